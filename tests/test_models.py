"""The shipped default models: loadable by name, documented provenance, better than interpolation."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import msf

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "motion_val.npz"
EXPECTED = {"h36m17-3d": (3, True), "h36m17-2d": (2, False)}


def test_shipped_models_are_listed():
    assert set(EXPECTED) <= set(msf.models())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_model_metadata(name, backend):
    r = msf.Refiner.load(name, backend=backend)
    dims, root_relative = EXPECTED[name]
    assert r.config.K == 10 and r.config.T == 101
    assert r.pose["skeleton"] == "h36m17" and r.pose["dims"] == dims and len(r.pose["joints"]) == 17
    assert bool(r.pose.get("root_relative")) == root_relative
    source = json.loads(r.metadata["source"])
    description = json.loads(source["description"])
    assert {"data", "noise_model", "training", "validation"} <= set(description)
    assert description["training"]["commands"][0].startswith("python tools/train.py")
    assert len(description["training"]["seeds"]) == len(description["training"]["commands"])


@pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not beside the checkout")
def test_3d_model_beats_linear_interpolation_on_held_out_motion(backend):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import accuracy
    import motion_data as md
    sequences = [s for s in md.load_sequences("val") if len(s) >= 300][:4]
    res = accuracy.evaluate_3d(msf.Refiner.load("h36m17-3d", backend=backend), sequences, np.random.default_rng(7))
    assert res["msf"][0] < 0.9 * res["linear"][0], res
