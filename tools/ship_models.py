"""Convert the trained checkpoints into the shipped models, through the same converter users run.

    python tools/ship_models.py [--checkpoints build/train] [--previous DIR] [--only NAME ...]

Reads CHECKPOINTS/{h36m17-3d,h36m17-2d,coco17-2d}.pth.tar (written by tools/train.py), evaluates each on
motion_val.npz through recover() (benchmarks/accuracy.py: the detector-like mix, and the range of noise
levels), and writes src/msf/models/NAME.safetensors whose provenance records the data, the noise model,
every training command and seed that led to it, and those figures. A run that started from a shipped
model (`--init NAME`) inherits that model's training history from --previous (default: the shipped files
as they are before this run overwrites them).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

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
    "coco17-2d": dict(skeleton="coco17", dims=2, units="normalised", root_joints=[], image_normalised=True),
}
# Motion prediction (tools/train_predict.py, benchmarks/predict.py)
PREDICTION_MODELS = {
    "h36m17-3d-predict": dict(skeleton="h36m17", dims=3, units="mm", root_joints=[0], image_normalised=False),
}
DATA = ("CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu; funded by NSF EIA-0196217), H36M-17 "
        "joints, 30 fps: train = motion_train.npz (subjects 07, 08, 09, 13, 14, salsa 60/61), validation = "
        "motion_val.npz (03, 05, 12)")


def training_runs(checkpoint: Path, previous: Path) -> list[dict]:
    """The train.py runs that made a checkpoint, first to last, following their --init arguments (a
    checkpoint of train.py, or a shipped model whose provenance lists its own runs)."""
    performance = torch.load(checkpoint, weights_only=True)["performance"]
    words = performance["command"].split()
    if "--init" not in words:
        return [performance]
    init = words[words.index("--init") + 1]
    if init.endswith((".tar", ".pth", ".pt")):
        return training_runs(ROOT / init, previous) + [performance]
    shipped = msf.Refiner.load(previous / f"{init}.safetensors" if not Path(init).exists() else init)
    history = json.loads(json.loads(shipped.metadata["source"])["description"])["training"]
    # the shipped model's runs, without per-run steps (only their total is recorded)
    before = [{"command": c, "seed": seed, "steps": 0} for c, seed in zip(history["commands"], history["seeds"])]
    before[-1]["steps"] = history["steps"]
    return before + [performance]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=Path, default=ROOT / "build" / "train")
    parser.add_argument("--previous", type=Path, default=ROOT / "build" / "shipped-previous",
                        help="the shipped models the runs started from (copied there from src/msf/models "
                             "when the folder does not exist yet)")
    parser.add_argument("--only", nargs="*", default=list(MODELS), choices=list(MODELS) + list(PREDICTION_MODELS))
    args = parser.parse_args(argv)
    if not args.previous.exists():
        args.previous.mkdir(parents=True)
        for f in (ROOT / "src" / "msf" / "models").glob("*.safetensors"):
            (args.previous / f.name).write_bytes(f.read_bytes())
    shipped = []
    for name in args.only:
        if name in PREDICTION_MODELS:
            ship_prediction(name, args.checkpoints / f"{name}.pth.tar")
            continue
        pose = MODELS[name]
        val = md.load_sequences("val", pose["skeleton"])
        checkpoint = args.checkpoints / f"{name}.pth.tar"
        with tempfile.TemporaryDirectory() as tmp:
            draft = Path(tmp) / f"{name}.safetensors"
            convert(checkpoint, draft, **pose)
            refiner = msf.Refiner.load(draft)
            if pose["dims"] == 3:
                table = accuracy.table_3d(refiner, val, 0)
                figures = {level: {m: {"mpjpe_mm": round(float(e), 2), "accel_mm_per_frame2": round(float(a), 3)}
                                   for m, (e, a) in res.items()} for level, res in table.items()}
                noise = {"evaluation_3d_mm": {"levels": "Gaussian jitter sigma 0, 5, 10, 20, 30 mm per axis",
                                              "mix": asdict(md.NOISE_3D)}}
            else:
                images = accuracy.IMAGES_2D if pose["skeleton"] == "h36m17" else accuracy.IMAGES_COCO
                figures = {image: {level: {m: {f"pck@{t}": round(float(p), 2) for t, p in zip((0.05, 0.1, 0.2), v)}
                                           for m, v in res.items()}
                                   for level, res in accuracy.table_2d(refiner, val, 0, size).items()}
                           for image, size in images.items()}
                noise = {"evaluation_2d": "per keyframe, scaled by the bounding-box size b: jitter sigma 0, 0.5, 1, "
                                          "2, 3% of b, and the mix: sigma 0.03 b, outliers 3% of joints of 0.3 b "
                                          "(x0.5-1.5), left/right swaps 2% of keyframes",
                         "cameras": "random yaw, pitch -5..25 deg, distance 3-6 m; the person 15-90% of the image "
                                    "height, anywhere in it (motion_data.random_view)"}
            noise["training"] = ("per window (motion_data.random_noise): 15% clean, else jitter sigma 0..2.25x the "
                                 "detector-like (20 mm / 3% of the box, skewed to small), outliers 0..10% of joints "
                                 "in 60% of windows, left/right swaps 0..5% of keyframes in half; 2D: image sizes "
                                 f"{[f'{w:.0f}x{h:.0f}' for w, h in md.IMAGE_SIZES]}")
        runs = training_runs(checkpoint, args.previous)
        description = json.dumps({
            "data": DATA, "noise_model": noise,
            "training": {"commands": [r["command"] for r in runs], "seeds": [r["seed"] for r in runs],
                         "steps": sum(r["steps"] for r in runs),
                         "val_window_error": round(runs[-1]["val_window_error"], 4),
                         "val_window_error_units": runs[-1]["units"]},
            "validation": {"protocol": "benchmarks/accuracy.py: whole motion_val.npz sequences through recover(), "
                                       "seed 0", "figures": figures},
        })
        shipped.append((name, checkpoint, description, pose))
    for name, checkpoint, description, pose in shipped:   # after every history was read from --previous
        output = ROOT / "src" / "msf" / "models" / f"{name}.safetensors"
        convert(checkpoint, output, source=description, **pose)
        print(f"wrote {output}")
    return 0


def ship_prediction(name: str, checkpoint: Path) -> None:
    """A motion-prediction model: converted with its prediction setting, evaluated by benchmarks/predict.py
    on motion_val.npz, the figures and the training run in its provenance."""
    import predict as predict_benchmark

    pose = PREDICTION_MODELS[name]
    performance = torch.load(checkpoint, weights_only=True)["performance"]
    setting = {"history_frames": performance["history_frames"], "future_frames": performance["future_frames"],
               "fps": performance["fps"]}
    with tempfile.TemporaryDirectory() as tmp:
        draft = Path(tmp) / f"{name}.safetensors"
        convert(checkpoint, draft, prediction=setting, **pose)
        refiner = msf.Refiner.load(draft)
        sequences = [s for s in md.load_sequences("val") if len(s) > 1.2 * refiner.config.T + 2]
        table, n = predict_benchmark.evaluate(refiner, sequences, 5)
    description = json.dumps({
        "data": DATA, "task": "short-term motion prediction (paper section 3.6): "
                              f"{setting['history_frames']} observed frames at {setting['fps']:g} fps -> "
                              f"{setting['future_frames']} predicted, root-relative",
        "training": {"commands": [performance["command"]], "seeds": [performance["seed"]],
                     "steps": performance["steps"],
                     "val_future_mpjpe_mm": round(performance["val_future_mpjpe_mm"], 3)},
        "validation": {"protocol": f"benchmarks/predict.py: motion_val.npz, {n} windows, root-relative MPJPE (mm) at "
                                   f"{list(predict_benchmark.HORIZONS_MS)} ms",
                       "figures": {m: [round(e, 2) for e in errors] for m, errors in table.items()}},
    })
    output = ROOT / "src" / "msf" / "models" / f"{name}.safetensors"
    convert(checkpoint, output, source=description, prediction=setting, **pose)
    print(f"wrote {output}")


if __name__ == "__main__":
    sys.exit(main())
