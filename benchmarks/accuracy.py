"""Accuracy of the shipped models on held-out subjects, through recover() on whole sequences, over the
whole range of keyframe quality.

    python benchmarks/accuracy.py [--model-3d NAME|FILE] [--model-2d NAME|FILE] [--seed 0]
                                  [--plot docs/accuracy-noise.png] [--plot-clip docs/accuracy.png]

Data: ../shared/data/motion_val.npz (subjects never seen in training). Keyframe "detections" on
msf.keyframe_indices(n, K) of each whole sequence = ground truth + noise (tools/motion_data.py); the same
noisy keyframes go to msf and to the baselines, linear and cubic-spline (natural) interpolation.
Noise levels: Gaussian jitter alone (3D: sigma 0, 5, 10, 20, 30 mm per axis; 2D: 0, 0.5, 1, 2, 3% of the
person's box) and the detector-like mix (jitter 20 mm / 3% of the box, 3% outliers of 10x that, 2%
left/right swaps).
3D: MPJPE (mm, root-relative at the pelvis, all frames) and acceleration error (mm/frame^2, all frames).
2D: the 3D motion seen by one random virtual camera per sequence (motion_data.random_view: the person
15-90% of the image height, anywhere in it) in a square 1000x1000 and a 16:9 1920x1080 image;
PCK@0.05/0.1/0.2 of the ground-truth bounding box's larger side, all frames.
Short videos: exact (noise-free) poses of videos shorter than one window, msf's mean joint displacement.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import msf
from msf import layouts
from msf.baselines import cubic_spline_interpolation, linear_interpolation

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import motion_data as md  # noqa: E402

linear = linear_interpolation  # (M, J, D) at `indices` -> (n, J, D), piecewise linear in time (msf.baselines)
cubic = cubic_spline_interpolation  # the natural cubic spline through them (msf.baselines)


def mpjpe(pred, gt):
    return np.linalg.norm((pred - pred[:, :1]) - (gt - gt[:, :1]), axis=-1)


def accel_error(pred, gt):
    """|second difference of pred - that of gt| per frame and joint, root-relative, mm/frame^2."""
    def accel(x):
        x = x - x[:, :1]
        return x[:-2] - 2 * x[1:-1] + x[2:]
    return np.linalg.norm(accel(pred) - accel(gt), axis=-1)


def evaluate_3d(refiner, sequences, rng, noise=md.NOISE_3D):
    """-> {method: (MPJPE mm, acceleration error mm/frame^2)}."""
    errors = {"msf": [], "linear": [], "cubic": []}
    accels = {k: [] for k in errors}
    for seq in sequences:
        n = len(seq)
        idx = msf.keyframe_indices(n, refiner.config.K)
        noisy = noise.apply(seq[idx], rng)
        preds = {"msf": refiner.recover(noisy, n).astype(np.float64), "linear": linear(noisy, idx, n),
                 "cubic": cubic(noisy, idx, n)}
        for name, pred in preds.items():
            errors[name].append(mpjpe(pred, seq))
            if n >= 3:
                accels[name].append(accel_error(pred, seq))
    return {name: (np.concatenate([e.ravel() for e in errors[name]]).mean(),
                   np.concatenate([a.ravel() for a in accels[name]]).mean()) for name in errors}


def evaluate_2d(refiner, sequences, rng, image_size=md.IMAGE_SIZE, sigma=0.03, outlier_rate=0.03, swap_rate=0.02):
    """-> {method: PCK (%) at 0.05, 0.1, 0.2 of the box}; noise in fractions of the box (default: the mix)."""
    hits = {"msf": [], "linear": [], "cubic": []}
    thresholds = np.array([0.05, 0.1, 0.2])
    for seq in sequences:
        n = len(seq)
        idx = msf.keyframe_indices(n, refiner.config.K)
        pixels = md.random_view(seq, rng, image_size)
        size = md.bbox_size(pixels)
        mirror = layouts.get(refiner.pose["skeleton"]).mirror
        noisy = md.noise_2d(float(size[idx].mean()), sigma, outlier_rate, swap_rate).apply(pixels[idx], rng, mirror)
        preds = {"msf": refiner.recover(noisy, n, image_size=image_size).astype(np.float64),
                 "linear": linear(noisy, idx, n), "cubic": cubic(noisy, idx, n)}
        for name, pred in preds.items():
            dist = np.linalg.norm(pred - pixels, axis=-1) / size[:, None]        # (n, J)
            hits[name].append(dist[..., None] <= thresholds)
    return {name: 100 * np.concatenate([h.reshape(-1, 3) for h in hits[name]]).mean(axis=0) for name in hits}


LEVELS_3D = [(f"{s:g} mm", md.Noise(s, 0.0, 0.0, 0.0)) for s in (0, 5, 10, 20, 30)] + [("mix", md.NOISE_3D)]
LEVELS_2D = [(f"{100 * s:g}%", (s, 0.0, 0.0)) for s in (0, 0.005, 0.01, 0.02, 0.03)] + [("mix", (0.03, 0.03, 0.02))]
IMAGES_2D = {"1000x1000": (1000.0, 1000.0), "1920x1080": (1920.0, 1080.0)}
IMAGES_COCO = {"1920x1080": (1920.0, 1080.0), "640x480": (640.0, 480.0), "1080x1920": (1080.0, 1920.0)}


def table_3d(refiner, sequences, seed):
    """{level: {method: (MPJPE, accel)}}, each level with its own fixed noise draw."""
    return {name: evaluate_3d(refiner, sequences, np.random.default_rng(seed + i), noise)
            for i, (name, noise) in enumerate(LEVELS_3D)}


def table_2d(refiner, sequences, seed, image_size):
    return {name: evaluate_2d(refiner, sequences, np.random.default_rng(seed + 100 + i), image_size, *noise)
            for i, (name, noise) in enumerate(LEVELS_2D)}


def short_videos(refiner, sequences, lengths=(1, 2, 6, 11, 51)):
    """Exact poses of videos shorter than one window: {n: (msf, linear) mean joint error against the exact
    poses over all frames (model units); a 1-frame video is its keyframe, so any error there is msf moving it."""
    out = {}
    for n in lengths:
        errors = {"msf": [], "linear": []}
        for seq in sequences:
            for start in range(0, len(seq) - n, max(1, len(seq) // 4)):
                clip = seq[start:start + n]
                idx = msf.keyframe_indices(n, refiner.config.K)
                if refiner.pose.get("image_normalised"):
                    truth = md.project(clip, md.random_camera(np.random.default_rng(start), clip[:, 0].mean(0)))
                    frames = refiner.recover(truth[idx], n, image_size=md.IMAGE_SIZE)
                else:
                    truth = clip
                    frames = refiner.recover(clip[idx], n)
                errors["msf"].append(np.linalg.norm(frames - truth, axis=-1).ravel())
                errors["linear"].append(np.linalg.norm(linear(truth[idx], idx, n) - truth, axis=-1).ravel())
        out[n] = tuple(float(np.concatenate(errors[m]).mean()) for m in ("msf", "linear"))
    return out


def print_3d(name, refiner, table):
    print(f"3D ({name}, K = {refiner.config.K}, whole sequences through recover()): MPJPE (mm) / accel. error "
          "(mm/frame²)\n")
    print("| noise | msf | linear | cubic | msf vs best interpolation |\n| --- | --- | --- | --- | --- |")
    ok = True
    for level, res in table.items():
        best = min(res["linear"][0], res["cubic"][0])
        ok &= res["msf"][0] <= res["linear"][0]
        cells = " | ".join(f"{res[m][0]:.1f} / {res[m][1]:.2f}" for m in ("msf", "linear", "cubic"))
        print(f"| {level} | {cells} | {100 * (1 - res['msf'][0] / best):+.1f}% |")
    mix = table["mix"]
    best = min(mix["linear"][0], mix["cubic"][0])
    print(f"\nmsf MPJPE <= linear at every level: {'yes' if ok else 'NO'}; at the mix "
          f"{100 * (1 - mix['msf'][0] / best):.1f}% below the best interpolation (target >= 20%), accel. "
          f"{mix['msf'][1]:.2f} vs cubic {mix['cubic'][1]:.2f} (target: no worse)\n")


def print_2d(name, refiner, tables):
    print(f"2D ({name}, K = {refiner.config.K}): PCK@0.05 / PCK@0.1 (%), per image size\n")
    print("| noise (of the box) | image | msf | linear | cubic | msf - best interpolation @0.05 |\n"
          "| --- | --- | --- | --- | --- | --- |")
    worst = np.inf
    for image, table in tables.items():
        for level, res in table.items():
            worst = min(worst, res["msf"][0] - res["linear"][0])
            cells = " | ".join(f"{res[m][0]:.1f} / {res[m][1]:.1f}" for m in ("msf", "linear", "cubic"))
            best = max(res["linear"][0], res["cubic"][0])
            print(f"| {level} | {image} | {cells} | {res['msf'][0] - best:+.1f} |")
    gains = ", ".join(f"{image} {t['mix']['msf'][0] - max(t['mix']['linear'][0], t['mix']['cubic'][0]):+.1f}"
                      for image, t in tables.items())
    print(f"\nworst msf - linear PCK@0.05 over all levels: {worst:+.1f} points (target >= -0.5); at the mix: "
          f"{gains} points over the best interpolation (target >= +5)\n")


def plot_noise(table3, tables2, path):
    """MPJPE (3D) and PCK@0.05 (2D, each image size) against the noise level, for the three methods."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ([("3D: MPJPE (mm), lower is better", table3, lambda r: r[0])] if table3 else []) + \
        [(f"{image}: PCK@0.05 (%), higher is better", t, lambda r: r[0]) for image, t in tables2.items()]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), layout="constrained", squeeze=False)
    for ax, (title, table, value) in zip(axes[0], panels):
        levels = list(table)
        for method, style in (("msf", "o-"), ("linear", "s--"), ("cubic", "^:")):
            ax.plot(range(len(levels)), [value(table[lv][method]) for lv in levels], style, label=method, ms=4)
        ax.set_xticks(range(len(levels)), levels, fontsize=8)
        ax.set_xlabel("keyframe noise (jitter sigma; mix = detector-like)", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=80)


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
    parser.add_argument("--model-3d", default="h36m17-3d", help="'' to skip")
    parser.add_argument("--model-2d", default="h36m17-2d", help="'' to skip")
    parser.add_argument("--model-coco", default="coco17-2d", help="a COCO-17 2D model; '' to skip")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="val", help="data split (only train and val are available)")
    parser.add_argument("--plot", help="write a PNG of the error against the noise level (needs matplotlib)")
    parser.add_argument("--plot-clip", help="write a PNG of one 3D sequence, msf vs linear (needs matplotlib)")
    args = parser.parse_args(argv)
    sequences = md.load_sequences(args.split)
    command = " ".join(sys.argv[1:] if argv is None else argv)
    print(f"data: motion_{args.split}.npz, {len(sequences)} sequences, {sum(map(len, sequences))} frames; "
          f"seed {args.seed}; command: python benchmarks/accuracy.py {command}\n")
    table3, tables2 = {}, {}
    if args.model_3d:
        r3 = msf.Refiner.load(args.model_3d)
        table3 = table_3d(r3, sequences, args.seed)
        print_3d(args.model_3d, r3, table3)
        moved = short_videos(r3, sequences)
        print("short videos, exact keyframes, mean joint error over all frames, msf / linear (mm): "
              + ", ".join(f"{n} frame{'s' * (n > 1)}: {a:.2f} / {b:.2f}" for n, (a, b) in moved.items()) + "\n")
        if args.plot_clip:
            plot(r3, sequences[2], np.random.default_rng(args.seed), args.plot_clip)
    for model in (args.model_2d, args.model_coco):
        if not model or (model not in msf.models() and not Path(model).exists()):
            continue
        r2 = msf.Refiner.load(model)
        seqs = md.load_sequences(args.split, r2.pose["skeleton"])
        images = IMAGES_2D if model == args.model_2d else IMAGES_COCO
        tables = {image: table_2d(r2, seqs, args.seed, size) for image, size in images.items()}
        print_2d(model, r2, tables)
        moved = short_videos(r2, seqs)
        print(f"short videos, exact keyframes ({md.IMAGE_SIZE[0]:.0f}x{md.IMAGE_SIZE[1]:.0f} image), mean joint "
              "error over all frames, msf / linear (px): "
              + ", ".join(f"{n}: {a:.2f} / {b:.2f}" for n, (a, b) in moved.items()) + "\n")
        tables2.update({f"{model} {image}": t for image, t in tables.items()})
    if args.plot:
        plot_noise(table3, tables2, args.plot)


if __name__ == "__main__":
    main()
