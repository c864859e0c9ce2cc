"""Train the shipped default models on motion capture (PyTorch; never needed at run time).

    python tools/train.py --kind 3d --minutes 25 --seed 0 -o build/train/h36m17-3d.pth.tar
    python tools/train.py --kind 2d --minutes 25 --seed 0 -o build/train/h36m17-2d.pth.tar
    python tools/train.py --kind 3d --noise range --init h36m17-3d --minutes 45 -o build/train4/h36m17-3d.pth.tar
    python tools/train.py --kind 2d --layout coco17 --noise range --init h36m17-2d -o build/train4/coco17-2d.pth.tar
    python tools/train.py --kind 3d --noise range --init h36m17-3d --set-interp cubic --accel-weight 1 ...

Windows of T = 101 frames are cut from ../shared/data/motion_train.npz at a random speed (0.8-1.2x,
linear resampling), rotated about the vertical axis, mirrored (left/right swapped) and scaled (0.9-1.1);
their keyframes get detector-like noise (tools/motion_data.py): `--noise detector` the one detector-like
mix for every window, `--noise range` a noise level drawn per window from clean to well beyond
detector-like (motion_data.random_noise). 3D: root-relative at the pelvis, in metres during training; the
exported weights are rescaled to take and give millimetres (exact: the model is linear at its input and
output). 2D: pixels of a random virtual camera divided by the image size; `--noise range` also draws the
image size (motion_data.IMAGE_SIZES: landscape, portrait, 4:3, square), the person's size and position in
it (motion_data.random_view). L1 loss on all frames, as in the official trainer. The checkpoint with the
best validation error on windows of motion_val.npz (drawn with the same noise as training) is written in
the official trainer's format ({epoch, state_dict, performance, optimizer}) for tools/convert_weights.py.
`--init` continues from a checkpoint written by this script, or from an msf weight file or shipped model.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import motion_data as md  # noqa: E402
from torch_model import PoseRefinementModel  # noqa: E402

from msf import layouts  # noqa: E402
from msf.baselines import cubic_spline_interpolation, linear_interpolation  # noqa: E402

K, Q, C, L = 10, 10, 64, 4
T = K * Q + 1
METRES = 1000.0  # 3D training units: mm / 1000


def sample_windows(sequences, lengths, batch, rng, kind, noise, mirror):
    """-> (keyframes (B, Q+1, P), targets (B, T, P), masks (B, T)) float32, in training units."""
    kfs, targets, masks = [], [], []
    weights = lengths / lengths.sum()
    for _ in range(batch):
        seq = sequences[rng.choice(len(sequences), p=weights)]
        speed = rng.uniform(0.8, 1.2)
        start = rng.uniform(0, len(seq) - 1 - speed * (T - 1) - 1e-6)
        world = md.augment(md.resample(seq, start, speed, T), rng, mirror)
        kf, target, mask = make_pair(world, rng, kind, noise, mirror)
        kfs.append(kf)
        targets.append(target)
        masks.append(mask)
    return tuple(torch.from_numpy(np.stack(a).astype(np.float32)) for a in (kfs, targets, masks))


def make_pair(world, rng, kind, noise="detector", mirror=md.MIRROR, ends=True):
    """world (T, J, 3) mm -> (noisy keyframes (Q+1, P), clean targets (T, P), frame mask (T,)), in training units.

    With `ends`, a fifth of the windows are short videos (n < T frames, down to a single frame) and a
    fifth end on an off-grid frame, built exactly as recover() builds them: detections on
    keyframe_indices(n, K), each normalised, the grid point after an off-grid last detection extrapolated
    linearly, the grid padded by repeating its last keyframe; the loss then covers only the video's
    frames. `noise`: "detector" (the detector-like mix) or "range" (a level drawn per window)."""
    mode = rng.choice(["full", "short", "off-grid"], p=[0.6, 0.2, 0.2]) if ends else "full"
    n = {"full": T, "short": rng.integers(1, T), "off-grid": rng.integers((Q - 1) * K + 2, Q * K + 1)}[mode]
    frames = np.arange(0, n, K) if (n - 1) % K == 0 else np.append(np.arange(0, n, K), n - 1)
    if kind == "3d":
        model = md.NOISE_3D if noise == "detector" else md.random_noise(rng, md.NOISE_3D.sigma)
        noisy = model.apply(world[frames], rng, mirror)
        detections = (noisy - noisy[:, :1]) / METRES
        target = (world - world[:, :1]) / METRES
    else:
        if noise == "detector":
            size = np.array(md.IMAGE_SIZE)
            pixels = md.project(world, md.random_camera(rng, world[:, 0].mean(axis=0)))
        else:
            size = np.array(md.IMAGE_SIZES[rng.integers(len(md.IMAGE_SIZES))])
            pixels = md.random_view(world, rng, size)
        box = float(md.bbox_size(pixels[frames]).mean())
        if noise == "detector":
            model = md.noise_2d(box)
        else:
            level = md.random_noise(rng, 0.03)
            model = md.noise_2d(box, level.sigma, level.outlier_rate, level.swap_rate)
        detections = model.apply(pixels[frames], rng, mirror) / size
        target = pixels / size
    grid = list(detections)
    if (n - 1) % K:
        t0, t1 = frames[-2], frames[-1]
        grid[-1] = grid[-1] + (grid[-1] - grid[-2]) * ((-(-t1 // K) * K - t1) / (t1 - t0))
    grid += [grid[-1]] * (Q + 1 - len(grid))
    mask = (np.arange(T) < n).astype(np.float32)
    return np.stack(grid).reshape(Q + 1, -1), target.reshape(T, -1), mask


def validation_error(model, kf, target, kind, accel_weight=0.0):
    """Mean per-joint error over all frames: mm (3D) or fraction of the image size (2D); with `accel_weight`,
    plus that times the mean per-joint error of the second differences (acceleration), the quantity the
    training loss weighs the same way, so that the checkpoint kept is the best one by that loss."""
    with torch.no_grad():
        out = model.forward_keyframes(kf)
    dims = 3 if kind == "3d" else 2
    error = (out - target).reshape(out.shape[0], T, -1, dims)
    err = error.norm(dim=-1).mean().item()
    if accel_weight:
        err += accel_weight * (error[:, 2:] - 2 * error[:, 1:-1] + error[:, :-2]).norm(dim=-1).mean().item()
    return err * METRES if kind == "3d" else err


def export_units(state_dict, kind):
    """Rescales a metre-trained 3D model to millimetres in and out (exact): X = W_i kf + b_i scales with the
    input, the encoder sees W_e X / s, and the output head and interpolation bias are multiplied by s."""
    if kind != "3d":
        return state_dict
    sd = {k: v.clone() for k, v in state_dict.items()}
    sd["l_interp.bias"] *= METRES
    sd["encoder_emb.weight"] /= METRES
    sd["fc.weight"] *= METRES
    sd["fc.bias"] *= METRES
    return sd


def import_units(state_dict, kind):
    """The inverse of export_units, to continue training from a written checkpoint."""
    if kind != "3d":
        return state_dict
    sd = {k: v.clone() for k, v in state_dict.items()}
    sd["l_interp.bias"] /= METRES
    sd["encoder_emb.weight"] *= METRES
    sd["fc.weight"] /= METRES
    sd["fc.bias"] /= METRES
    return sd


def interpolation_matrix(kind: str) -> np.ndarray:
    """(T, Q+1): every frame of a window as msf.baselines' linear or natural-cubic-spline interpolation of the
    keyframes (both linear in them), the matrix read off by interpolating unit keyframes."""
    interpolate = {"linear": linear_interpolation, "cubic": cubic_spline_interpolation}[kind]
    return interpolate(np.eye(Q + 1)[:, :, None], np.arange(0, T, K), T)[..., 0]


def set_interpolation(model, kind: str) -> None:
    """l_interp := linear or natural-cubic-spline interpolation of the keyframes, bias 0; the rest unchanged."""
    matrix = interpolation_matrix(kind)
    with torch.no_grad():
        model.l_interp.weight.copy_(torch.from_numpy(matrix))
        model.l_interp.bias.zero_()


def start_from_linear(model) -> None:
    """l_interp := linear interpolation, frozen; output head := 0. The official forward then returns
    exactly the linear interpolation of the keyframes, and training learns the encoder's correction."""
    with torch.no_grad():
        model.l_interp.weight.copy_(torch.from_numpy(interpolation_matrix("linear")))
        model.l_interp.bias.zero_()
        model.fc.weight.zero_()
        model.fc.bias.zero_()
    model.l_interp.requires_grad_(False)


def initial_state(source: str, model, kind: str) -> dict:
    """A state dict in training units from a checkpoint of this script, an msf weight file or a shipped
    model's name; tensors the file may omit (the unused value_reduce) keep the model's own values."""
    from msf.refiner import MODELS_DIR
    from msf.weights import read

    path = Path(source)
    if path.suffix in (".tar", ".pth", ".pt"):
        return import_units(torch.load(path, weights_only=True)["state_dict"], kind)
    weights = read(path if path.exists() else MODELS_DIR / f"{source}.safetensors")
    state = dict(model.state_dict())
    state.update({k: torch.from_numpy(np.array(v)) for k, v in weights.tensors.items()})
    return import_units(state, kind)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=["3d", "2d"], required=True)
    parser.add_argument("--minutes", type=float, default=25.0, help="training time budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layout", default="h36m17", help="keypoint layout (msf.layouts), e.g. coco17 (2D)")
    parser.add_argument("--noise", choices=["detector", "range"], default="detector",
                        help="keyframe noise: the detector-like mix, or a level drawn per window")
    parser.add_argument("--from-linear", action="store_true",
                        help="fix l_interp to linear interpolation and zero the output head: the model starts as "
                             "exactly linear interpolation and learns only corrections to it")
    parser.add_argument("--set-interp", choices=["linear", "cubic"],
                        help="set l_interp to this interpolation of the keyframes (after --init), keeping the rest")
    parser.add_argument("--freeze-interp", action="store_true",
                        help="keep l_interp as it starts (e.g. the linear interpolation of a --from-linear run)")
    parser.add_argument("--accel-weight", type=float, default=0.0,
                        help="add this times the L1 error of the frames' second differences (acceleration) to the loss")
    parser.add_argument("--init", help="continue from a checkpoint written by this script, an msf weight file "
                                       "or a shipped model's name")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)

    if args.layout != "h36m17" and args.kind == "3d":
        parser.error("3D training is root-relative at the H36M pelvis: --layout h36m17 only")
    mirror = layouts.get(args.layout).mirror
    train = [s for s in md.load_sequences("train", args.layout) if len(s) >= 1.2 * (T - 1) + 2]
    lengths = np.array([len(s) for s in train], dtype=np.float64)
    val_rng = np.random.default_rng(1234)  # the same validation windows for every run
    val = [s for s in md.load_sequences("val", args.layout) if len(s) >= T + 1]
    val_lengths = np.array([len(s) for s in val], dtype=np.float64)
    pairs = [make_pair(md.resample(val[i], val_rng.uniform(0, len(val[i]) - T - 1), 1.0, T), val_rng, args.kind,
                       args.noise, mirror, ends=False)
             for i in val_rng.choice(len(val), size=512, p=val_lengths / val_lengths.sum())]
    val_kf = torch.from_numpy(np.stack([p[0] for p in pairs]).astype(np.float32))
    val_target = torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.float32))

    P = (3 if args.kind == "3d" else 2) * len(mirror)
    model = PoseRefinementModel(K, Q, P, C, L, expansion_factor=2, dropout=0.1, reduce_token=4, reduce_channel=1)
    if args.init:
        model.load_state_dict(initial_state(args.init, model, args.kind))
    if args.from_linear:
        start_from_linear(model)
    if args.set_interp:
        set_interpolation(model, args.set_interp)
    if args.freeze_interp:
        model.l_interp.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=1e-4)
    budget = args.minutes * 60
    start = time.monotonic()
    best, best_state, step, history = math.inf, None, 0, []
    while (elapsed := time.monotonic() - start) < budget:
        lr = args.lr * 0.5 * (1 + math.cos(math.pi * elapsed / budget))
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        kf, target, mask = sample_windows(train, lengths, args.batch, rng, args.kind, args.noise, mirror)
        error = model.forward_keyframes(kf) - target
        loss = (error.abs() * mask[..., None]).sum() / (mask.sum() * target.shape[-1])
        if args.accel_weight:
            accel = error[:, 2:] - 2 * error[:, 1:-1] + error[:, :-2]
            inside = mask[:, 2:] * mask[:, 1:-1] * mask[:, :-2]
            loss = loss + args.accel_weight * (accel.abs() * inside[..., None]).sum() / (
                inside.sum().clamp(min=1) * target.shape[-1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        if step % 250 == 0:
            model.eval()
            err = validation_error(model, val_kf, val_target, args.kind, args.accel_weight)
            history.append((step, round(elapsed), err))
            print(f"step {step} {elapsed / 60:.1f} min lr {lr:.2e} loss {loss.item():.5f} val {err:.4f}", flush=True)
            if err < best:
                best, best_state = err, {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.eval()
    err = validation_error(model, val_kf, val_target, args.kind, args.accel_weight)
    if err < best or best_state is None:
        best, best_state = err, {k: v.detach().clone() for k, v in model.state_dict().items()}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": step, "state_dict": export_units(best_state, args.kind),
                "performance": {"val_window_error": best, "units": "mm" if args.kind == "3d" else "image fraction",
                                "steps": step, "history": history, "seed": args.seed,
                                "command": "python tools/train.py " + " ".join(sys.argv[1:] if argv is None else argv)},
                "optimizer": optimizer.state_dict()}, args.output)
    print(json.dumps({"output": str(args.output), "steps": step, "best_val": best}))


if __name__ == "__main__":
    main()
