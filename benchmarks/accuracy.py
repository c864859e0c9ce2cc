"""Accuracy of the shipped models on held-out subjects, through recover() on whole sequences.

    python benchmarks/accuracy.py [--model-3d NAME|FILE] [--model-2d NAME|FILE] [--seed 0] [--plot out.png]

Data: ../shared/data/motion_val.npz (subjects never seen in training). Keyframe "detections" on
msf.keyframe_indices(n, K) of each whole sequence = ground truth + detector-like noise (tools/motion_data.py);
the same noisy keyframes go to msf and to the baselines, linear and cubic-spline (natural) interpolation.
3D: MPJPE (mm, root-relative at the pelvis, all frames) and acceleration error (mm/frame^2, all frames).
2D: the 3D motion seen by one random virtual camera per sequence; PCK@0.05/0.1/0.2 of the ground-truth
bounding box's larger side, all frames.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import msf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import motion_data as md  # noqa: E402


def linear(keyframes: np.ndarray, indices: np.ndarray, n: int) -> np.ndarray:
    """(M, J, D) at `indices` -> (n, J, D), piecewise linear in time."""
    flat = keyframes.reshape(len(keyframes), -1)
    out = np.stack([np.interp(np.arange(n), indices, flat[:, i]) for i in range(flat.shape[1])], axis=1)
    return out.reshape((n,) + keyframes.shape[1:])


def cubic(keyframes: np.ndarray, indices: np.ndarray, n: int) -> np.ndarray:
    """Natural cubic spline through (indices, keyframes) -> (n, J, D); linear when fewer than 3 keyframes."""
    if len(indices) < 3:
        return linear(keyframes, indices, n)
    y = keyframes.reshape(len(keyframes), -1)
    h = np.diff(indices).astype(np.float64)
    m = len(indices)
    # second derivatives: tridiagonal system with zero curvature at both ends
    a = np.zeros((m, m))
    rhs = np.zeros_like(y)
    a[0, 0] = a[-1, -1] = 1
    for i in range(1, m - 1):
        a[i, i - 1:i + 2] = h[i - 1], 2 * (h[i - 1] + h[i]), h[i]
        rhs[i] = 6 * ((y[i + 1] - y[i]) / h[i] - (y[i] - y[i - 1]) / h[i - 1])
    second = np.linalg.solve(a, rhs)
    t = np.arange(n)
    seg = np.clip(np.searchsorted(indices, t, side="right") - 1, 0, m - 2)
    x0, hs = indices[seg], h[seg]
    u = ((t - x0) / hs)[:, None]
    out = ((1 - u) * y[seg] + u * y[seg + 1]
           + ((1 - u) ** 3 - (1 - u)) * hs[:, None] ** 2 / 6 * second[seg]
           + (u ** 3 - u) * hs[:, None] ** 2 / 6 * second[seg + 1])
    return out.reshape((n,) + keyframes.shape[1:])


def mpjpe(pred, gt):
    return np.linalg.norm((pred - pred[:, :1]) - (gt - gt[:, :1]), axis=-1)


def accel_error(pred, gt):
    """|second difference of pred - that of gt| per frame and joint, root-relative, mm/frame^2."""
    def accel(x):
        x = x - x[:, :1]
        return x[:-2] - 2 * x[1:-1] + x[2:]
    return np.linalg.norm(accel(pred) - accel(gt), axis=-1)


def evaluate_3d(refiner, sequences, rng):
    errors = {"msf": [], "linear": [], "cubic": []}
    accels = {k: [] for k in errors}
    for seq in sequences:
        n = len(seq)
        idx = msf.keyframe_indices(n, refiner.config.K)
        noisy = md.NOISE_3D.apply(seq[idx], rng)
        preds = {"msf": refiner.recover(noisy, n).astype(np.float64), "linear": linear(noisy, idx, n),
                 "cubic": cubic(noisy, idx, n)}
        for name, pred in preds.items():
            errors[name].append(mpjpe(pred, seq))
            if n >= 3:
                accels[name].append(accel_error(pred, seq))
    return {name: (np.concatenate([e.ravel() for e in errors[name]]).mean(),
                   np.concatenate([a.ravel() for a in accels[name]]).mean()) for name in errors}


def evaluate_2d(refiner, sequences, rng):
    hits = {"msf": [], "linear": [], "cubic": []}
    thresholds = np.array([0.05, 0.1, 0.2])
    for seq in sequences:
        n = len(seq)
        idx = msf.keyframe_indices(n, refiner.config.K)
        pixels = md.project(seq, md.random_camera(rng, seq[:, 0].mean(axis=0)))
        size = md.bbox_size(pixels)
        noisy = md.noise_2d(float(size[idx].mean())).apply(pixels[idx], rng)
        preds = {"msf": refiner.recover(noisy, n, image_size=md.IMAGE_SIZE).astype(np.float64),
                 "linear": linear(noisy, idx, n), "cubic": cubic(noisy, idx, n)}
        for name, pred in preds.items():
            dist = np.linalg.norm(pred - pixels, axis=-1) / size[:, None]        # (n, J)
            hits[name].append(dist[..., None] <= thresholds)
    return {name: 100 * np.concatenate([h.reshape(-1, 3) for h in hits[name]]).mean(axis=0) for name in hits}


def plot(refiner, sequence, rng, path):
    """One held-out sequence: a wrist's height (ground truth, noisy keyframes, linear, msf) and the
    per-frame MPJPE of both methods."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(sequence)
    idx = msf.keyframe_indices(n, refiner.config.K)
    noisy = md.NOISE_3D.apply(sequence[idx], rng)
    preds = {"linear": linear(noisy, idx, n), "msf": refiner.recover(noisy, n).astype(np.float64)}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True, layout="constrained")
    rel = lambda x: x - x[:, :1]  # noqa: E731
    top.plot(rel(sequence)[:, 16, 1], color="k", lw=1, label="ground truth")
    top.plot(idx, rel(noisy)[:, 16, 1], "o", ms=3, color="C2", label="noisy keyframes")
    for (name, pred), style in zip(preds.items(), ("--", "-")):
        top.plot(rel(pred)[:, 16, 1], style, lw=1.2, label=name)
        bottom.plot(mpjpe(pred, sequence).mean(axis=1), style, lw=1.2,
                    label=f"{name}: {mpjpe(pred, sequence).mean():.1f} mm")
    top.set_ylabel("right wrist height (mm)")
    top.legend(fontsize=7, ncol=4)
    bottom.set_ylabel("MPJPE (mm)")
    bottom.set_xlabel("frame (30 fps)")
    bottom.legend(fontsize=7)
    fig.savefig(path, dpi=80)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-3d", default="h36m17-3d")
    parser.add_argument("--model-2d", default="h36m17-2d")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="val", help="data split (only train and val are available)")
    parser.add_argument("--plot", help="write a PNG of one sequence (needs matplotlib)")
    args = parser.parse_args(argv)
    sequences = md.load_sequences(args.split)
    print(f"data: motion_{args.split}.npz, {len(sequences)} sequences, {sum(map(len, sequences))} frames; "
          f"seed {args.seed}; command: python benchmarks/accuracy.py {' '.join(sys.argv[1:])}\n")
    if args.model_3d:
        r3 = msf.Refiner.load(args.model_3d)
        res = evaluate_3d(r3, sequences, np.random.default_rng(args.seed))
        best = min(res["linear"][0], res["cubic"][0])
        print(f"3D ({args.model_3d}, K = {r3.config.K}, whole sequences through recover())\n")
        print("| method | MPJPE (mm) | accel. error (mm/frame²) |\n| --- | --- | --- |")
        for name, (e, a) in res.items():
            print(f"| {name} | {e:.1f} | {a:.2f} |")
        print(f"\nmsf MPJPE vs best interpolation: {100 * (1 - res['msf'][0] / best):+.1f}% lower "
              f"(target >= 20%); accel. vs cubic: {res['msf'][1]:.2f} vs {res['cubic'][1]:.2f} "
              f"(target: no worse)\n")
        if args.plot:
            plot(r3, sequences[2], np.random.default_rng(args.seed), args.plot)
    if args.model_2d:
        r2 = msf.Refiner.load(args.model_2d)
        res = evaluate_2d(r2, sequences, np.random.default_rng(args.seed + 1))
        print(f"2D ({args.model_2d}, K = {r2.config.K}, {md.IMAGE_SIZE[0]:.0f}x{md.IMAGE_SIZE[1]:.0f} virtual cameras)\n")
        print("| method | PCK@0.05 | PCK@0.1 | PCK@0.2 |\n| --- | --- | --- | --- |")
        for name, pck in res.items():
            print(f"| {name} | {pck[0]:.1f} | {pck[1]:.1f} | {pck[2]:.1f} |")
        best = max(res["linear"][0], res["cubic"][0])
        print(f"\nmsf PCK@0.05 vs best interpolation: {res['msf'][0] - best:+.1f} points (target >= +5)")


if __name__ == "__main__":
    main()
