"""Shared fixtures: random official-layout models without PyTorch, and the backend under test.

The whole suite runs once per backend: MSF_BACKEND=cpp or MSF_BACKEND=numpy selects what
`backend="auto"` (and the `backend` fixture) means. MSF_REQUIRE_CPP=1 (set by CI) turns a missing
C++ extension into a failure instead of skipped C++ tests. Plain helpers and constants are in helpers.py.
"""
import json
import os
import sys

import numpy as np
import pytest

import msf
from helpers import HAS_CPP, LSP14_POSE, OFFICIAL, TOOLS
from msf.config import Config, official_config

if os.environ.get("MSF_REQUIRE_CPP") == "1" and not HAS_CPP:
    raise RuntimeError("MSF_REQUIRE_CPP=1 but msf._core is not built: the C++ extension failed to install")


def random_state_dict(config: Config, seed: int = 0, with_unused_value_reduce: bool = True) -> dict:
    """Random float64 tensors of sensible scale for every official state-dict key of `config`."""
    rng = np.random.default_rng(seed)
    shapes = dict(config.expected_shapes())
    if with_unused_value_reduce:  # the official model stores value_reduce even where d == N
        for i in range(config.L):
            for branch, n, d in (("synth_token", config.T, config.d_t), ("synth_channel", config.C, config.d_c)):
                p = f"encoder.layers.{i}.synth_att.{branch}.value_reduce."
                shapes.setdefault(p + "weight", (d, n))
                shapes.setdefault(p + "bias", (d,))
    tensors = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight") or name.endswith(("norm1.weight", "norm2.weight")):
            tensors[name] = 1 + 0.1 * rng.standard_normal(shape)
        elif name.endswith("bias"):
            tensors[name] = 0.1 * rng.standard_normal(shape)
        else:
            tensors[name] = rng.standard_normal(shape) / np.sqrt(shape[1])
    return tensors


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


@pytest.fixture
def h36m_state():
    """Random tensors of the official Human3.6M model (P = 51): for the conversion and `msf info` tests."""
    return random_state_dict(official_config(*OFFICIAL["h36m"]), seed=4)


@pytest.fixture(scope="module")
def lsp14_model_path(tmp_path_factory):
    """A random pw3d-architecture model with helpers.LSP14_POSE, as a file: for the many-file and Ray tests."""
    path = tmp_path_factory.mktemp("model") / "m.safetensors"
    msf.weights.write(path, random_state_dict(official_config(*OFFICIAL["pw3d"]), seed=2),
                      {"format": "msf", "pose": json.dumps(LSP14_POSE)})
    return path
