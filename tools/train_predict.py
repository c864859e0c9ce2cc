"""Train the shipped motion-prediction model (paper §3.6) on motion capture (PyTorch; never needed at run time).

    python tools/train_predict.py --minutes 40 --seed 0 -o build/predict/h36m17-3d-predict.pth.tar

The setting of the paper's short-term prediction (Table 4): 10 observed frames at 25 fps, the next 10
(80-400 ms) predicted. The official architecture as a keyframe model with K = 1: its Q + 1 = 20 inputs are
the 10 observed poses followed by the last observed pose repeated 10 times (the coarse fill of the
future), and its T = 20 outputs are the whole sequence; only the 10 future frames are scored. The model
starts as exactly constant-velocity extrapolation (l_interp = that linear map, output head 0) and learns
corrections; l_interp stays trainable.

Data: ../shared/data/motion_train.npz (30 fps), resampled to 25 fps at a random speed (0.9-1.1x),
rotated about the vertical axis, mirrored and scaled (tools/motion_data.py); poses root-relative at the
pelvis, metres during training, millimetres in the written weights (exact, as in tools/train.py). L1 loss
on the future frames. The checkpoint with the best future-frame MPJPE on fixed windows of motion_val.npz
is written in the official trainer's format for tools/convert_weights.py.
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
from train import METRES, export_units  # noqa: E402

from msf import layouts  # noqa: E402

HISTORY, FUTURE = 10, 10
T = HISTORY + FUTURE
K, Q, C, L = 1, T - 1, 64, 4
FPS, SOURCE_FPS = 25.0, 30.0


def constant_velocity_matrix() -> np.ndarray:
    """(T, T): the observed frames kept, future frame HISTORY-1+s = last + s * (last - previous)."""
    W = np.zeros((T, T))
    for t in range(HISTORY):
        W[t, t] = 1.0
    for t in range(HISTORY, T):
        s = t - (HISTORY - 1)
        W[t, HISTORY - 1], W[t, HISTORY - 2] = 1.0 + s, -float(s)
    return W


def make_inputs(observed: np.ndarray) -> np.ndarray:
    """observed (B, HISTORY, P) -> model inputs (B, T, P): the last observed pose repeated as the future."""
    return np.concatenate([observed, np.repeat(observed[:, -1:], FUTURE, axis=1)], axis=1)


def windows(sequences, count, rng, mirror, augment=True):
    """-> (inputs (B, T, P), targets (B, T, P)) float32 in metres, root-relative."""
    lengths = np.array([len(s) for s in sequences], dtype=np.float64)
    out = []
    for i in rng.choice(len(sequences), size=count, p=lengths / lengths.sum()):
        seq = sequences[i]
        speed = SOURCE_FPS / FPS * (rng.uniform(0.9, 1.1) if augment else 1.0)
        start = rng.uniform(0, len(seq) - 1 - speed * (T - 1) - 1e-6)
        world = md.resample(seq, start, speed, T)
        if augment:
            world = md.augment(world, rng, mirror)
        out.append(((world - world[:, :1]) / METRES).reshape(T, -1))
    target = np.stack(out)
    return (torch.from_numpy(make_inputs(target[:, :HISTORY]).astype(np.float32)),
            torch.from_numpy(target.astype(np.float32)))


def future_error(model, inputs, target) -> float:
    """Mean per-joint position error (mm) over the future frames."""
    with torch.no_grad():
        out = model.forward_keyframes(inputs)
    error = (out - target)[:, HISTORY:].reshape(len(out), FUTURE, -1, 3).norm(dim=-1)
    return error.mean().item() * METRES


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=40.0, help="training time budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    mirror = layouts.get("h36m17").mirror
    minimum = SOURCE_FPS / FPS * 1.1 * (T - 1) + 2
    train = [s for s in md.load_sequences("train") if len(s) >= minimum]
    val = [s for s in md.load_sequences("val") if len(s) >= minimum]
    val_inputs, val_target = windows(val, 1024, np.random.default_rng(1234), mirror, augment=False)

    model = PoseRefinementModel(K, Q, 3 * len(mirror), C, L, expansion_factor=2, dropout=0.1, reduce_token=4,
                                reduce_channel=1)
    with torch.no_grad():
        model.l_interp.weight.copy_(torch.from_numpy(constant_velocity_matrix()))
        model.l_interp.bias.zero_()
        model.fc.weight.zero_()
        model.fc.bias.zero_()
    start_error = future_error(model.eval(), val_inputs, val_target)
    print(f"start (constant velocity): val future MPJPE {start_error:.2f} mm", flush=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    budget = args.minutes * 60
    start = time.monotonic()
    best, best_state, step, history = start_error, None, 0, []
    while (elapsed := time.monotonic() - start) < budget:
        lr = args.lr * 0.5 * (1 + math.cos(math.pi * elapsed / budget))
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        inputs, target = windows(train, args.batch, rng, mirror)
        loss = (model.forward_keyframes(inputs) - target)[:, HISTORY:].abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        if step % 250 == 0:
            err = future_error(model.eval(), val_inputs, val_target)
            history.append((step, round(elapsed), err))
            print(f"step {step} {elapsed / 60:.1f} min lr {lr:.2e} loss {loss.item():.5f} val {err:.2f}", flush=True)
            if err < best:
                best, best_state = err, {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is None:
        raise SystemExit("training never beat constant velocity on validation: nothing written")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": step, "state_dict": export_units(best_state, "3d"),
                "performance": {"val_future_mpjpe_mm": best, "constant_velocity_mm": start_error, "steps": step,
                                "history": history, "seed": args.seed, "history_frames": HISTORY,
                                "future_frames": FUTURE, "fps": FPS,
                                "command": "python tools/train_predict.py " + " ".join(
                                    sys.argv[1:] if argv is None else argv)},
                "optimizer": optimizer.state_dict()}, args.output)
    print(json.dumps({"output": str(args.output), "steps": step, "best_val": best, "constant_velocity": start_error}))


if __name__ == "__main__":
    main()
