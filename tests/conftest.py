"""Shared fixtures: random official-layout models without PyTorch, and the backend under test.

The whole suite runs once per backend: MSF_BACKEND=cpp or MSF_BACKEND=numpy selects what
`backend="auto"` (and the `backend` fixture) means. MSF_REQUIRE_CPP=1 (set by CI) turns a missing
C++ extension (msf._core, or msf._kernels: the test-only bindings) into a failure instead of skipped C++ tests.
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import msf
from msf import schema
from msf.config import OFFICIAL_CONFIGS, Config, official_config  # noqa: F401 (official_config: for the tests)

HAS_CPP = "cpp" in msf.backends()


def _has_kernels() -> bool:
    """msf._kernels: single kernels and the C++ safetensors reader, which a wheel may leave out
    (MSF_KERNEL_BINDINGS=OFF)."""
    try:
        from msf import _kernels  # noqa: F401
    except ImportError:
        return False
    return True


HAS_KERNELS = HAS_CPP and _has_kernels()
if os.environ.get("MSF_REQUIRE_CPP") == "1":
    if not HAS_CPP:
        raise RuntimeError("MSF_REQUIRE_CPP=1 but msf._core is not built: the C++ extension failed to install")
    if not HAS_KERNELS:
        raise RuntimeError("MSF_REQUIRE_CPP=1 but msf._kernels is not built (MSF_KERNEL_BINDINGS=OFF?): the tests "
                           "of single kernels and of the C++ safetensors reader would skip")

TOOLS = Path(__file__).resolve().parents[1] / "tools"

requires_cpp = pytest.mark.skipif(not HAS_CPP, reason="msf._core (C++ extension) is not built")
requires_kernels = pytest.mark.skipif(not HAS_KERNELS, reason="msf._kernels (test-only C++ bindings) is not built")

# (K, Q, P, C, L) of the official configurations and the config their constructor builds: one source,
# msf.config (docs/model.md §1)
OFFICIAL = OFFICIAL_CONFIGS


def random_state_dict(config: Config, seed: int = 0, with_unused_value_reduce: bool = True) -> dict:
    """Random float64 tensors of sensible scale for every official state-dict key of `config` (msf.schema)."""
    return schema.random_state_dict(config, seed, with_unused=with_unused_value_reduce)


@pytest.fixture(scope="session")
def backend() -> str:
    """The backend under test in this run of the suite."""
    chosen = os.environ.get("MSF_BACKEND", "").strip().lower()
    if chosen:
        return chosen
    return "cpp" if HAS_CPP else "numpy"


@pytest.fixture(scope="module")
def torch():
    """PyTorch, with tools/ importable (tools/torch_model.py); the test is skipped without torch."""
    torch = pytest.importorskip("torch")
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    return torch


# A random pw3d-architecture model (K=10, 14 LSP joints x 3, mm, root-relative) as a file, and keyframes
# for it with one missing joint: the inputs of the many-file and Ray tests.
LSP14_POSE = {"skeleton": "lsp14", "joints": [f"j{i}" for i in range(14)], "dims": 3, "units": "mm",
              "root_relative": True, "root_joints": [2, 3],
              "parents": [1, 2, 12, 12, 3, 4, 7, 8, 12, 12, 9, 10, -1, 12]}


@pytest.fixture(scope="module")
def lsp14_model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.safetensors"
    msf.weights.write(path, random_state_dict(official_config(*OFFICIAL["pw3d"]), seed=2),
                      {"format": "msf", "pose": json.dumps(LSP14_POSE)})
    return path


def lsp14_keyframes(n: int, seed: int) -> np.ndarray:
    """(keyframe_count(n, 10), 14, 3) mm around 900, joint 4 of keyframe 1 missing (NaN)."""
    kf = np.random.default_rng(seed).standard_normal((len(msf.keyframe_indices(n, 10)), 14, 3)) * 200 + 900
    kf[1, 4] = np.nan
    return kf
