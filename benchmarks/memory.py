"""Resident memory over many refine calls: it must stay flat (no leak in the C++ core, the bindings or
the Python layer).

    python benchmarks/memory.py [--calls 100000] [--backend cpp]

Prints the RSS after a warm-up and every 10% of the calls, then the growth; exits 1 if RSS grew by
more than 5 MiB over the measured calls.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path

import numpy as np

import msf
from msf.config import Config


def rss_mib() -> float:
    """Current resident set size (Linux /proc), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--backend", default="cpp")
    args = parser.parse_args(argv)
    config = Config(K=10, Q=5, P=42, C=32, L=4, ffn_hidden=64, d_t=12, d_c=32, se_t=12, se_c=8, reweight_hidden=12)
    rng = np.random.default_rng(0)
    path = Path(tempfile.mkdtemp()) / "pw3d.safetensors"
    msf.weights.write(path, {k: rng.standard_normal(s) / np.sqrt(s[-1]) for k, s in config.expected_shapes().items()})
    refiner = msf.Refiner.load(path, backend=args.backend)
    keyframes = rng.standard_normal((2, config.n_keyframes, config.P)).astype(np.float32)
    bad = keyframes.copy()
    bad[0, 0, 0] = np.nan
    for _ in range(1000):
        refiner.refine(keyframes)
    start = rss_mib()
    print(f"backend {refiner.backend}, pw3d architecture, batch 2; RSS after warm-up {start:.1f} MiB")
    for i in range(1, args.calls + 1):
        refiner.refine(keyframes)
        if i % 100 == 0:  # the error path too: exceptions must not leak
            try:
                refiner.refine(bad)
            except msf.InputError:
                pass
        if i % (args.calls // 10) == 0:
            print(f"  {i:>7} calls: RSS {rss_mib():.1f} MiB")
    growth = rss_mib() - start
    print(f"growth over {args.calls} calls (+{args.calls // 100} refused calls): {growth:+.2f} MiB")
    return 0 if growth < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
