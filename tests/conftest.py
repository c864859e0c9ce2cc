"""Shared fixtures: random official-layout models without PyTorch, and the backend under test.

The whole suite runs once per backend: MSF_BACKEND=cpp or MSF_BACKEND=numpy selects what
`backend="auto"` (and the `backend` fixture) means. MSF_REQUIRE_CPP=1 (set by CI) turns a missing
C++ extension (msf._core, or msf._kernels: the test-only bindings) into a failure instead of skipped C++
tests. Plain helpers and constants are in helpers.py.
"""
import json
import os
import sys

import pytest

import msf
from helpers import HAS_CPP, HAS_KERNELS, LSP14_POSE, OFFICIAL, TOOLS, official_config, random_state_dict

if os.environ.get("MSF_REQUIRE_CPP") == "1":
    if not HAS_CPP:
        raise RuntimeError("MSF_REQUIRE_CPP=1 but msf._core is not built: the C++ extension failed to install")
    if not HAS_KERNELS:
        raise RuntimeError("MSF_REQUIRE_CPP=1 but msf._kernels is not built (MSF_KERNEL_BINDINGS=OFF?): the tests "
                           "of single kernels and of the C++ safetensors reader would skip")


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
