"""Subnormal floats must not slow the C++ forward (issue 11): batch-16 refine time of the h36m architecture
with normal weights, with every weight subnormal (flushed at load), and with zero biases and subnormal
keyframes (subnormal activations, flushed by FTZ/DAZ inside the forward).

    python benchmarks/subnormal.py [--backend cpp] [--repeats 5]

Before the fix the two subnormal cases took 110x and 30x the normal time on this project's machine.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import msf
from msf.config import OFFICIAL_CONFIGS, official_config


def best_time(refiner: msf.Refiner, keyframes: np.ndarray, repeats: int) -> float:
    refiner.refine(keyframes)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        refiner.refine(keyframes)
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="cpp")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    config = official_config(*OFFICIAL_CONFIGS["h36m"])
    rng = np.random.default_rng(0)
    tensors = {k: rng.standard_normal(s) / np.sqrt(s[-1]) for k, s in config.expected_shapes().items()}
    keyframes = rng.standard_normal((16, config.n_keyframes, config.P)).astype(np.float32)

    def timed(weights, kf):
        return best_time(msf.Refiner(msf.Model.from_tensors(weights), args.backend), kf, args.repeats)

    normal = timed(tensors, keyframes)
    subnormal_weights = timed({k: v * 1e-39 for k, v in tensors.items()}, keyframes)
    zero_bias = {k: np.zeros_like(v) if k.endswith("bias") else v for k, v in tensors.items()}
    normal_activations = timed(zero_bias, keyframes)
    subnormal_activations = timed(zero_bias, keyframes * np.float32(1e-39))
    print(f"backend {args.backend}, h36m architecture, batch 16, best of {args.repeats}")
    print(f"  normal weights          {normal * 1e3:8.2f} ms")
    print(f"  subnormal weights       {subnormal_weights * 1e3:8.2f} ms ({subnormal_weights / normal:.1f}x)")
    print(f"  zero biases             {normal_activations * 1e3:8.2f} ms")
    print(f"  ... subnormal keyframes {subnormal_activations * 1e3:8.2f} ms "
          f"({subnormal_activations / normal_activations:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
