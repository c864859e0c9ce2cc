"""Refine keyframes with msf: load a model, refine one window and a batch, print shapes and timings.

    python examples/demo.py [model.safetensors]

Without an argument the demo writes a model with the official h36m architecture (K=10, Q=10,
17 joints x 3D, C=64, L=4) and random weights to a temporary file: the numbers it prints are then
not poses, but the shapes, the API and the timings are the real ones.
"""
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import msf
from msf.config import Config


def random_h36m_model(path: Path) -> None:
    config = Config(K=10, Q=10, P=51, C=64, L=4, ffn_hidden=128, d_t=25, d_c=64, se_t=25, se_c=16,
                    reweight_hidden=25)
    rng = np.random.default_rng(0)
    tensors = {name: rng.standard_normal(shape) / np.sqrt(shape[-1])
               for name, shape in config.expected_shapes().items()}
    msf.weights.write(path, tensors, {"format": "msf", "format_version": "1", "config": config.to_json(),
                                      "source": "examples/demo.py: random weights"})


def main() -> None:
    if len(sys.argv) > 1:
        path = Path(sys.argv[1])
    else:
        path = Path(tempfile.mkdtemp()) / "random-h36m.safetensors"
        random_h36m_model(path)
        print(f"no model given: wrote random weights with the official h36m architecture to {path}")
    refiner = msf.Refiner.load(path)
    c = refiner.config
    print(f"backends available: {msf.backends()}; using {refiner.backend!r}")
    print(f"model: K={c.K} (keyframe interval), Q+1={c.n_keyframes} keyframes -> T={c.T} frames, P={c.P}, "
          f"C={c.C}, L={c.L}")

    keyframes = np.random.default_rng(1).standard_normal((c.n_keyframes, c.P)).astype(np.float32) * 100
    window = refiner.refine(keyframes)
    print(f"refine: keyframes {keyframes.shape} -> frames {window.shape}, dtype {window.dtype}")

    batch = np.random.default_rng(2).standard_normal((64, c.n_keyframes, c.P)).astype(np.float32) * 100
    refiner.refine(batch)
    start = time.perf_counter()
    repeats = 20
    for _ in range(repeats):
        refiner.refine(batch)
    per_window = (time.perf_counter() - start) / (repeats * len(batch))
    print(f"batch of 64 windows: {per_window * 1e3:.3f} ms per window ({1 / per_window:,.0f} windows/s, "
          f"{1 / per_window * (c.T - c.n_keyframes):,.0f} interpolated frames/s)")


if __name__ == "__main__":
    main()
