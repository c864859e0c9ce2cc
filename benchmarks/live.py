"""Live use on held-out subjects: the low-latency stream against offline recover() and the baselines
that can run at the same latency.

    python benchmarks/live.py [--model h36m17-3d] [--seed 0]

Data and noise as benchmarks/accuracy.py (motion_val.npz, whole sequences, keyframes on frames 0, K, 2K,
...; sequences cut to end on a keyframe). Methods, with the most frames a frame waits for its detection:
  msf offline   recover(): (Q+2)K frames (101-110 at K = Q = 10)
  msf live      stream(latency="keyframe"): K frames
  linear        interpolation between the two keyframes around a frame: K frames
  extrapolated  linear extrapolation from the two last keyframes, the next K frames predicted: 0 frames
3D MPJPE (mm, root-relative) and acceleration error (mm/frame^2), all frames, and the wall time of one
live push (one window) on this machine.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import msf

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import accuracy  # noqa: E402
import motion_data as md  # noqa: E402


def extrapolated(keyframes: np.ndarray, K: int, n: int) -> np.ndarray:
    """Frames (q-1)K+1 .. qK continued from keyframes q-2, q-1 (held before two exist): latency 0."""
    out = np.empty((n,) + keyframes.shape[1:])
    out[0] = keyframes[0]
    for q in range(1, len(keyframes)):
        a, b = keyframes[max(q - 2, 0)], keyframes[q - 1]
        w = np.arange(1, K + 1)[:, None, None] / K
        out[(q - 1) * K + 1:q * K + 1] = b + (b - a) * w if q >= 2 else np.broadcast_to(b, (K,) + b.shape)
    return out


def evaluate(refiner, sequences, rng, noise):
    K = refiner.config.K
    errors = {m: [] for m in ("msf offline", "msf live", "linear", "extrapolated")}
    accels = {m: [] for m in errors}
    for seq in sequences:
        n = (len(seq) - 1) // K * K + 1
        seq = seq[:n]
        idx = msf.keyframe_indices(n, K)
        noisy = noise.apply(seq[idx], rng)
        stream = refiner.stream(latency="keyframe")
        preds = {"msf offline": refiner.recover(noisy, n).astype(np.float64),
                 "msf live": np.concatenate([stream.push(k) for k in noisy]).astype(np.float64),
                 "linear": accuracy.linear(noisy, idx, n), "extrapolated": extrapolated(noisy, K, n)}
        for name, pred in preds.items():
            errors[name].append(accuracy.mpjpe(pred, seq).ravel())
            accels[name].append(accuracy.accel_error(pred, seq).ravel())
    return {m: (np.concatenate(errors[m]).mean(), np.concatenate(accels[m]).mean()) for m in errors}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="h36m17-3d")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    refiner = msf.Refiner.load(args.model)
    K = refiner.config.K
    sequences = [s for s in md.load_sequences("val") if len(s) > 2 * K]
    print(f"{args.model}, motion_val.npz: {len(sequences)} sequences; seed {args.seed}\n")
    latency = {"msf offline": f"{(refiner.config.Q + 1) * K}-{(refiner.config.Q + 2) * K}", "msf live": str(K),
               "linear": str(K), "extrapolated": "0"}
    levels = [lv for lv in accuracy.LEVELS_3D if lv[0] in ("0 mm", "10 mm", "20 mm", "mix")]
    results = {name: evaluate(refiner, sequences, np.random.default_rng(args.seed + i), noise)
               for i, (name, noise) in enumerate(levels)}
    print("| method | latency (frames) | " + " | ".join(f"MPJPE {lv}" for lv in results) + " | accel. (mix) |")
    print("| --- | --- |" + " --- |" * (len(results) + 1))
    for m in latency:
        print(f"| {m} | {latency[m]} | " + " | ".join(f"{r[m][0]:.1f}" for r in results.values())
              + f" | {results['mix'][m][1]:.2f} |")
    stream = refiner.stream(latency="keyframe")
    pose = sequences[0][0]
    for _ in range(refiner.config.Q + 1):
        stream.push(pose)
    start, pushes = time.perf_counter(), 200
    for _ in range(pushes):
        stream.push(pose)
    per_push = (time.perf_counter() - start) / pushes
    print(f"\none live push (one window, {refiner.backend} backend, 1 thread): {per_push * 1e3:.3f} ms; at 30 fps "
          f"the latency is {K} frames = {K / 30 * 1e3:.0f} ms plus that")


if __name__ == "__main__":
    main()
