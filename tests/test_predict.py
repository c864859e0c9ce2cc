"""Motion prediction (msf.predict, Refiner.predict): the shipped model, its contract and its errors."""
import json
import sys

import numpy as np
import pytest

import msf
from helpers import MOTION_VAL, OFFICIAL, ROOT, official_config, random_state_dict
from msf import reference
from msf.predict import read_prediction
from tolerances import MODEL_ATOL_OF_MAX, assert_close

NAME = "h36m17-3d-predict"


@pytest.fixture(scope="module")
def refiner(backend):
    return msf.Refiner.load(NAME, backend=backend)


def motion(n: int, seed: int = 0) -> np.ndarray:
    """(n, 17, 3) mm: a smooth random walk of a pose about a moving root, in the model's units."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((17, 3)) * 250
    t = np.arange(n)[:, None, None]
    return base + 40 * np.sin(t / 7.0 + rng.uniform(0, 6, (17, 3))) + t * np.array([15.0, 0.0, 5.0])


def test_shipped_model_declares_its_setting(refiner):
    spec = refiner.prediction
    assert (spec.history_frames, spec.future_frames, spec.fps) == (10, 10, 25.0)
    assert refiner.config.K == 1 and refiner.config.T == 20


def test_shapes_and_batches(refiner):
    history = motion(14)
    one = refiner.predict(history, 10)
    assert one.shape == (10, 17, 3) and one.dtype == np.float32
    assert np.isfinite(one).all()
    # only the last 10 frames are read; batches give each motion's own result; flat poses too
    assert np.array_equal(refiner.predict(history[-10:], 10), one)
    many = refiner.predict(np.stack([history, motion(14, seed=1)]), 4)
    assert many.shape == (2, 4, 17, 3)
    assert np.array_equal(many[0], one[:4])
    assert np.array_equal(refiner.predict(history.reshape(14, 51), 10), one.reshape(10, 51))


def test_matches_the_reference_forward(refiner):
    """predict is the official forward on (observed, last observed repeated), root handled outside."""
    history = motion(10, seed=3)
    root = history[:, :1]
    inputs = np.concatenate([history - root, np.repeat(history[-1:] - root[-1:], 10, axis=0)])
    tensors = {k: np.asarray(v, np.float64) for k, v in refiner._model.tensors.items()}
    expected = reference.model_forward(inputs.reshape(1, 20, 51), tensors, refiner.config.L)[0, 10:]
    root_path = root[-1] + np.arange(1, 11)[:, None, None] * (root[-1] - root[-2])
    got = refiner.predict(history, 10)
    assert_close(got - root_path, expected.reshape(10, 17, 3), atol_of_max=MODEL_ATOL_OF_MAX, what="predict")


def test_errors_name_the_problem(refiner):
    history = motion(12)
    for bad in (0, 11, 2.5, True, None):
        with pytest.raises(msf.InputError, match="n_future"):
            refiner.predict(history, bad)
    with pytest.raises(msf.InputError, match="needs the last 10"):
        refiner.predict(history[:9], 3)
    nan = history.copy()
    nan[-1, 3, 0] = np.nan
    with pytest.raises(msf.InputError, match="NaN"):
        refiner.predict(nan, 3)
    with pytest.raises(msf.InputError, match="shape"):
        refiner.predict(np.zeros((12, 16, 3)), 3)
    with pytest.raises(msf.InputError, match="history hold values beyond float32 range"):
        refiner.predict(np.full((12, 17, 3), 1e39), 3)  # blamed the predicted frames
    with pytest.raises(msf.InputError, match="keyframe model"):
        refiner.recover(np.zeros((3, 17, 3)), 21)
    with pytest.raises(msf.InputError, match="keyframe model"):
        refiner.stream()
    with pytest.raises(msf.InputError, match="motion-prediction model"):
        msf.Refiner.load("h36m17-3d").predict(history, 3)


def test_malformed_setting_is_refused(tmp_path):
    config = official_config(*OFFICIAL["h36m"])
    tensors = random_state_dict(config)
    for setting in ('{"history_frames": 10}', '{"history_frames": 5, "future_frames": 5, "fps": 25}', "[1, 2]",
                    '{"history_frames": "x", "future_frames": 1, "fps": 25}'):
        path = tmp_path / "m.safetensors"
        msf.weights.write(path, tensors, {"format": "msf", "prediction": setting})
        with pytest.raises(msf.WeightsError, match="prediction"):
            msf.Refiner.load(path)
    assert read_prediction({}, config) is None
    assert json.loads(msf.Refiner.load(NAME).metadata["prediction"])["future_frames"] == 10


@pytest.mark.skipif(not MOTION_VAL.exists(), reason="../shared/data is not beside the checkout")
def test_beats_constant_velocity_on_validation(refiner):
    """The issue's contract on held-out motion (benchmarks/predict.py, a coarser window grid)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.path.insert(0, str(ROOT / "tools"))
    import motion_data as md
    import predict as benchmark

    sequences = [s for s in md.load_sequences("val") if len(s) > 30]
    table, n = benchmark.evaluate(refiner, sequences, 15)
    assert n > 200
    for horizon, ours, baseline in zip(benchmark.HORIZONS_MS, table["msf"], table["constant velocity"]):
        assert ours < baseline, f"{horizon} ms: msf {ours:.1f} mm vs constant velocity {baseline:.1f} mm"
