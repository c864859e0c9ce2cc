"""Both backends against the official architecture in PyTorch (tools/torch_model.py), float64 there.

A file written from the torch model's state dict is loaded with Refiner.load; its output must equal the
torch model's within the engine tolerance. Skipped when torch is not installed.
"""
import sys

import numpy as np
import pytest

import msf
from helpers import OFFICIAL, TOOLS
from tolerances import MODEL_ATOL_OF_MAX, assert_close

torch = pytest.importorskip("torch")
sys.path.insert(0, str(TOOLS))
from torch_model import random_model  # noqa: E402


@pytest.fixture(scope="module", params=sorted(OFFICIAL) + ["h36m_rt1", "h36m_rc8", "aist_rt1_rc8"])
def official(request, tmp_path_factory):
    name = request.param
    base = name.split("_r")[0]
    reduce_token = 1 if "rt1" in name else 4
    reduce_channel = 8 if "rc8" in name else 1
    model = random_model(*OFFICIAL[base], reduce_token=reduce_token, reduce_channel=reduce_channel,
                         seed=len(name), dtype=torch.float64)
    path = tmp_path_factory.mktemp("models") / f"{name}.safetensors"
    msf.weights.write(path, {k: v.numpy() for k, v in model.state_dict().items()},
                      {"format": "msf", "format_version": "1", "source": "tests: random official model"})
    return name, model, path


@pytest.mark.parametrize("backend", msf.backends())
def test_refine_matches_official_model(official, backend):
    name, model, path = official
    refiner = msf.Refiner.load(path, backend=backend)
    c = refiner.config
    # the official forward takes whole windows (B, T, P) and reads every K-th frame
    frames = torch.from_numpy(np.random.default_rng(0).standard_normal((8, c.T, c.P)) * 50)
    with torch.no_grad():
        expected = model(frames).numpy()
    out = refiner.refine(frames.numpy()[:, ::c.K])
    assert_close(out, expected, atol_of_max=MODEL_ATOL_OF_MAX, what=f"{backend} vs torch, {name}")
