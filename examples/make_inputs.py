"""Writes inputs for the C and C++ examples: a model with the official h36m architecture (K=10, Q=10,
17 joints x 3D, C=64, L=4) and RANDOM weights, and a keyframes file of a few windows.

    python examples/make_inputs.py OUT_DIR [--windows B]

writes OUT_DIR/model.safetensors and OUT_DIR/keyframes.txt ("B Q1 P", then one keyframe pose of P values
per line; the format examples/c/main.c documents). Needs only NumPy: msf is imported from the repository's
src/ when it is not installed. The weights are random, so the output is not poses; shapes and API are real.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

try:
    import msf
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import msf
from msf import schema
from msf.config import OFFICIAL_CONFIGS, official_config

CONFIG = official_config(*OFFICIAL_CONFIGS["h36m"])
JOINTS = ["pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "thorax", "neck", "head",
          "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist"]


def write_inputs(out_dir: Path, windows: int = 4, seed: int = 0) -> tuple[Path, Path]:
    """Returns the paths of the model and keyframes files written under out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tensors = schema.random_state_dict(CONFIG, rng, with_unused=False)
    pose = {"skeleton": "h36m17", "joints": JOINTS, "dims": 3, "units": "mm", "root_relative": True, "root": "pelvis"}
    model = out_dir / "model.safetensors"
    msf.weights.write(model, tensors, {"format": "msf", "format_version": "1", "config": CONFIG.to_json(),
                                       "pose": json.dumps(pose), "source": "examples/make_inputs.py: random weights"})

    keyframes = (rng.standard_normal((windows, CONFIG.n_keyframes, CONFIG.P)) * 100).astype(np.float32)
    lines = [f"{windows} {CONFIG.n_keyframes} {CONFIG.P}"]
    lines += [" ".join(f"{v:.9g}" for v in pose_values) for pose_values in keyframes.reshape(-1, CONFIG.P)]
    path = out_dir / "keyframes.txt"
    path.write_text("\n".join(lines) + "\n")
    return model, path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--windows", type=int, default=4, help="number of keyframe windows B (default 4)")
    args = parser.parse_args()
    for path in write_inputs(args.out_dir, args.windows):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
