"""msf in one minute: refine a dance clip from noisy keyframe detections with the shipped 3D model.

    python examples/demo.py [--model h36m17-3d] [--plot demo.png]

A detector is simulated on one frame in K of a real motion-capture clip (examples/data, a subject the
model never saw): ground truth plus 20 mm Gaussian jitter per joint. msf recovers every frame; linear
interpolation of the same detections is the baseline. Then the speed: frames/s that recover delivers on a
longer video at its default stride.
"""
import argparse
import time
from pathlib import Path

import numpy as np

import msf

CLIP = Path(__file__).resolve().parent / "data" / "cmu_05_02.npy"


def mpjpe(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean per-joint position error (mm), root-relative at the pelvis (joint 0)."""
    return float(np.linalg.norm((pred - pred[:, :1]) - (truth - truth[:, :1]), axis=-1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="h36m17-3d", help="a shipped model's name or a .safetensors file")
    parser.add_argument("--plot", help="also write a PNG (needs matplotlib)")
    args = parser.parse_args()

    refiner = msf.Refiner.load(args.model)
    c = refiner.config
    print(f"msf {msf.__version__}, backends {msf.backends()}, using {refiner.backend!r}; model {args.model}: "
          f"K={c.K}, {c.n_keyframes} keyframes -> T={c.T} frames per window, P={c.P}, C={c.C}, L={c.L}")

    truth = np.load(CLIP).astype(np.float64)                     # (n, 17, 3) mm, world coordinates
    n = len(truth)
    frames = msf.keyframe_indices(n, c.K)                          # where the detector runs
    detections = truth[frames] + np.random.default_rng(0).normal(0, 20, (len(frames), 17, 3))
    refined = refiner.recover(detections, n)                       # (n, 17, 3), every frame
    linear = np.stack([np.interp(np.arange(n), frames, detections[:, j, d])
                       for j in range(17) for d in range(3)], axis=1).reshape(n, 17, 3)
    print(f"{n} frames, detector on {len(frames)} of them: MPJPE (mm, root-relative) "
          f"keyframes {mpjpe(detections, truth[frames]):.1f}, linear interpolation {mpjpe(linear, truth):.1f}, "
          f"msf {mpjpe(refined, truth):.1f}")

    # speed as a user sees it: frames delivered by recover per second, at its default stride (1: windows
    # start on every keyframe and overlap, so each frame is computed by about Q windows, then averaged)
    long_n = 20_000
    grid = msf.keyframe_indices(long_n, c.K)
    step = np.arange(len(grid)) % (2 * (len(frames) - 1))
    bounce = np.minimum(step, 2 * (len(frames) - 1) - step)          # the clip's detections back and forth
    refiner.recover(detections[:2 * c.n_keyframes], (2 * c.n_keyframes - 1) * c.K + 1)  # warm-up
    start = time.perf_counter()
    refiner.recover(detections[bounce], long_n)
    seconds = time.perf_counter() - start
    print(f"speed: recover on a {long_n:,}-frame video in {seconds:.2f} s = {long_n / seconds:,.0f} frames/s "
          f"(default stride 1, 1 thread, backend {refiner.backend!r})")

    if args.plot:
        from msf.plot import plot_sequence
        plot_sequence(args.plot, detections, frames, refined, refiner.pose.get("parents"), (3, 13, 16),
                      title=f"{args.model} on {CLIP.name}")
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
