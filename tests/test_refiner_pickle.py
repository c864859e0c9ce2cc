"""A Refiner pickles as what it was loaded from and loads again, in this process and in spawned ones."""
import hashlib
import json
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import msf
from helpers import OFFICIAL, official_config, random_state_dict
from msf import refiner as refiner_module

CONFIG = official_config(*OFFICIAL["pw3d"])
POSE = {"skeleton": "test14", "joints": [f"j{i}" for i in range(14)], "dims": 3, "units": "mm"}


@pytest.fixture(scope="module")
def weight_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.safetensors"
    msf.weights.write(path, random_state_dict(CONFIG, seed=4), {"format": "msf", "pose": json.dumps(POSE)})
    return path


def keyframes(seed=0, n=137):
    return np.random.default_rng(seed).standard_normal((len(msf.keyframe_indices(n, 10)), 14, 3)) * 300


def _recover_in_worker(refiner, kf):
    return refiner.recover(kf, 137), refiner.backend


def _initialised(refiner):
    global _WORKER_REFINER
    _WORKER_REFINER = refiner


def _recover_with_initialised(kf):
    return _WORKER_REFINER.recover(kf, 137)


def test_a_loaded_file_pickles_as_its_bytes(weight_file, backend):
    r = msf.Refiner.load(weight_file, backend=backend, threads=2)
    data = pickle.dumps(r)
    assert weight_file.read_bytes() in data
    again = pickle.loads(data)
    assert again.backend == backend and again._threads == 2
    kf = keyframes()
    np.testing.assert_array_equal(again.recover(kf, 137), r.recover(kf, 137))


def test_bytes_and_models_pickle_too(weight_file, backend):
    kf = keyframes(1)
    from_bytes = msf.Refiner.load(bytearray(weight_file.read_bytes()), backend=backend)
    model = msf.Model.from_tensors(random_state_dict(CONFIG, seed=4), {"pose": json.dumps(POSE)})
    from_model = msf.Refiner(model, backend)
    for r in (from_bytes, from_model):
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(r)).recover(kf, 137), r.recover(kf, 137))


@pytest.mark.skipif("h36m17-3d" not in msf.models(), reason="shipped model absent")
def test_a_shipped_model_pickles_as_its_name_and_digest(monkeypatch, tmp_path, backend):
    r = msf.Refiner.load("h36m17-3d", backend=backend)
    data = pickle.dumps(r)
    assert len(data) < 1000  # the name and digest, not the weights
    kf = np.random.default_rng(3).standard_normal((11, 17, 3)) * 200
    np.testing.assert_array_equal(pickle.loads(data).recover(kf, 101), r.recover(kf, 101))
    # another installation whose file of that name differs: refused, naming both digests' prefixes
    other = tmp_path / "h36m17-3d.safetensors"
    other.write_bytes((refiner_module.MODELS_DIR / "h36m17-3d.safetensors").read_bytes()[:-4] + b"\0\0\0\0")
    monkeypatch.setattr(refiner_module, "MODELS_DIR", tmp_path)
    with pytest.raises(msf.WeightsError, match="install the same msf version") as e:
        pickle.loads(data)
    assert hashlib.sha256(other.read_bytes()).hexdigest()[:16] in str(e.value)
    other.unlink()
    with pytest.raises(msf.WeightsError, match="which this installation does not have"):
        pickle.loads(data)


def test_spawn_pool_results_are_bit_identical(weight_file, backend):
    r = msf.Refiner.load(weight_file, backend=backend)
    inputs = [keyframes(seed) for seed in range(4)]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_recover_in_worker, [r] * 4, inputs))
    for kf, (frames, name) in zip(inputs, results):
        assert name == backend
        np.testing.assert_array_equal(frames, r.recover(kf, 137))
    # once per worker, through the initializer
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"), initializer=_initialised,
                             initargs=(r,)) as pool:
        for kf, frames in zip(inputs, pool.map(_recover_with_initialised, inputs)):
            np.testing.assert_array_equal(frames, r.recover(kf, 137))
