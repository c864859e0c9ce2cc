"""Short-term motion prediction on held-out motion capture: msf.Refiner.predict against the baselines.

    python benchmarks/predict.py [--model h36m17-3d-predict] [--split val] [--every 5]

The protocol of the paper's Table 4 (short-term prediction): 10 observed frames at 25 fps in, the next
10 out, MPJPE (mm) at 80, 160, 320 and 400 ms (future frames 2, 4, 8, 10). Data: every sequence of
motion_val.npz (30 fps, resampled to 25 fps linearly), one window starting every `--every` source frames.
Poses are compared root-relative (pelvis at the origin), so the figure is the error of the predicted pose;
every method gets the same observed frames. Baselines: zero velocity (the last observed pose held) and
constant velocity (each joint moves on at its last observed velocity).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import motion_data as md  # noqa: E402

import msf  # noqa: E402

HORIZONS_MS = (80, 160, 320, 400)


def windows(sequences, fps: float, frames: int, every: int) -> np.ndarray:
    """(N, frames, J, 3) mm: windows at `fps` from sequences at 30 fps, one starting every `every` frames."""
    speed = 30.0 / fps
    out = [md.resample(seq, start, speed, frames)
           for seq in sequences for start in range(0, int(len(seq) - 1 - speed * (frames - 1)), every)]
    return np.stack(out)


def root_relative(poses: np.ndarray) -> np.ndarray:
    return poses - poses[..., :1, :]


def evaluate(refiner: msf.Refiner, sequences, every: int) -> tuple[dict, int]:
    """-> ({method: [MPJPE mm at each horizon]}, number of windows)."""
    spec = refiner.prediction
    h, f = spec.history_frames, spec.future_frames
    data = windows(sequences, spec.fps, h + f, every)
    observed, future = data[:, :h], data[:, h:]
    last, previous = observed[:, -1:], observed[:, -2:-1]
    steps = np.arange(1, f + 1)[None, :, None, None]
    methods = {"msf": refiner.predict(observed, f).astype(np.float64),
               "zero velocity": np.repeat(last, f, axis=1),
               "constant velocity": last + steps * (last - previous)}
    frames = [round(ms * spec.fps / 1000) for ms in HORIZONS_MS]
    table = {}
    for name, pred in methods.items():
        error = np.linalg.norm(root_relative(pred) - root_relative(future), axis=-1).mean(axis=(0, 2))  # (f,)
        table[name] = [float(error[i - 1]) for i in frames]
    return table, len(data)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="h36m17-3d-predict")
    parser.add_argument("--split", default="val", help="data split (only train and val are available)")
    parser.add_argument("--every", type=int, default=5, help="a window starts every this many source frames")
    args = parser.parse_args(argv)
    refiner = msf.Refiner.load(args.model)
    spec = refiner.prediction
    if spec is None:
        parser.error(f"{args.model} is not a motion-prediction model")
    sequences = [s for s in md.load_sequences(args.split) if len(s) > 30.0 / spec.fps * (spec.history_frames +
                                                                                        spec.future_frames) + 2]
    table, n = evaluate(refiner, sequences, args.every)
    print(f"Motion prediction ({args.model}; {spec.history_frames} observed frames at {spec.fps:g} fps), "
          f"motion_{args.split}.npz, {n} windows: root-relative MPJPE (mm)\n")
    print("| method | " + " | ".join(f"{ms} ms" for ms in HORIZONS_MS) + " |")
    print("| --- | " + " | ".join("---" for _ in HORIZONS_MS) + " |")
    for name, errors in table.items():
        print(f"| {name} | " + " | ".join(f"{e:.1f}" for e in errors) + " |")
    beats = all(m < c for m, c in zip(table["msf"], table["constant velocity"]))
    print(f"\nmsf below constant velocity at every horizon: {'yes' if beats else 'no'}")


if __name__ == "__main__":
    main()
