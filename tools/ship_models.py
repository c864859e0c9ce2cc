"""Convert the trained checkpoints into the shipped models, through the same converter users run.

    python tools/ship_models.py [--checkpoints build/train]

Reads build/train/h36m17-{3d,2d}.pth.tar (written by tools/train.py), evaluates each on motion_val.npz
through recover() (benchmarks/accuracy.py), and writes src/msf/models/h36m17-{3d,2d}.safetensors whose
provenance records the data, the noise model, the training command and seed, and those figures.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import accuracy  # noqa: E402
import motion_data as md  # noqa: E402

import msf  # noqa: E402
from msf.convert import convert  # noqa: E402

MODELS = {
    "h36m17-3d": dict(skeleton="h36m17", dims=3, units="mm", root_joints=[0], image_normalised=False),
    "h36m17-2d": dict(skeleton="h36m17", dims=2, units="normalised", root_joints=[], image_normalised=True),
}
DATA = ("CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu; funded by NSF EIA-0196217), H36M-17 "
        "joints, 30 fps: train = motion_train.npz (subjects 07, 08, 09, 13, 14, salsa 60/61), validation = "
        "motion_val.npz (03, 05, 12)")


def training_runs(checkpoint: Path) -> list[dict]:
    """The train.py runs that made a checkpoint, first to last, following their --init arguments."""
    performance = torch.load(checkpoint, weights_only=True)["performance"]
    words = performance["command"].split()
    before = training_runs(ROOT / words[words.index("--init") + 1]) if "--init" in words else []
    return before + [performance]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=Path, default=ROOT / "build" / "train")
    args = parser.parse_args(argv)
    val = md.load_sequences("val")
    for name, pose in MODELS.items():
        checkpoint = args.checkpoints / f"{name}.pth.tar"
        with tempfile.TemporaryDirectory() as tmp:
            draft = Path(tmp) / f"{name}.safetensors"
            convert(checkpoint, draft, **pose)
            refiner = msf.Refiner.load(draft)
            if pose["dims"] == 3:
                res = accuracy.evaluate_3d(refiner, val, np.random.default_rng(0))
                figures = {m: {"mpjpe_mm": round(e, 2), "accel_mm_per_frame2": round(a, 3)} for m, (e, a) in res.items()}
                noise = {"3d_mm": asdict(md.NOISE_3D)}
            else:
                res = accuracy.evaluate_2d(refiner, val, np.random.default_rng(1))
                figures = {m: {f"pck@{t}": round(float(p), 2) for t, p in zip((0.05, 0.1, 0.2), v)} for m, v in res.items()}
                noise = {"2d": "per keyframe, scaled by the bounding-box size b: sigma 0.03 b, outliers 3% of joints "
                               "of 0.3 b (x0.5-1.5), left/right swaps 2% of keyframes",
                         "cameras": "random yaw, pitch -5..25 deg, distance 3-6 m, focal 800-1400 px, 1000x1000 image"}
        runs = training_runs(checkpoint)
        description = json.dumps({
            "data": DATA, "noise_model": noise,
            "training": {"commands": [r["command"] for r in runs], "seeds": [r["seed"] for r in runs],
                         "steps": sum(r["steps"] for r in runs),
                         "val_window_error": round(runs[-1]["val_window_error"], 4),
                         "val_window_error_units": runs[-1]["units"]},
            "validation": {"protocol": "benchmarks/accuracy.py: whole motion_val.npz sequences through recover(), "
                                       "seed 0", "figures": figures},
        })
        output = ROOT / "src" / "msf" / "models" / f"{name}.safetensors"
        convert(checkpoint, output, source=description, **pose)
        print(f"wrote {output}: {json.dumps(figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
