"""Tensor sets that are not a consistent MixSynthFormer are refused, naming the problem, in both loaders."""
import dataclasses
import json

import numpy as np
import pytest

import msf
from helpers import HAS_CPP, OFFICIAL, official_config, random_state_dict
from msf import weights

if HAS_CPP:
    from msf import _core


def loaders():
    yield "python", lambda tensors, metadata=None: msf.Model.from_tensors(tensors, metadata)
    if HAS_CPP:
        yield "cpp", lambda tensors, metadata=None: _core.Model.from_buffer(weights.to_bytes(tensors, metadata))


CONFIG = official_config(*OFFICIAL["h36m"])


@pytest.mark.parametrize("name", sorted(OFFICIAL))
@pytest.mark.parametrize("reduce", [(4, 1), (1, 8), (2, 2)])
def test_config_is_inferred_from_shapes(name, reduce):
    config = official_config(*OFFICIAL[name], *reduce)
    assert msf.Model.from_tensors(random_state_dict(config)).config == config
    if HAS_CPP:  # the C++ reader infers every field of the Python Config, no more and no fewer, with its value
        assert _core.Model(random_state_dict(config)).config == dataclasses.asdict(config)


def test_unused_value_reduce_may_be_dropped():
    tensors = random_state_dict(CONFIG, with_unused_value_reduce=False)
    for _, load in loaders():
        load(tensors)


def mutate(change):
    tensors = random_state_dict(CONFIG)
    change(tensors)
    return tensors


BROKEN = {
    "missing tensor": (lambda t: t.pop("encoder.layers.2.ff.fc1.bias"), "encoder.layers.2.ff.fc1.bias"),
    "unexpected tensor": (lambda t: t.update({"encoder.layers.0.extra": np.zeros(3)}), "encoder.layers.0.extra"),
    "extra layer": (lambda t: t.update({"encoder.layers.7.norm1.weight": np.zeros(64)}), "encoder.layers.7"),
    "wrong shape": (lambda t: t.update({"encoder.layers.1.norm2.bias": np.zeros(63)}), "encoder.layers.1.norm2.bias"),
    "disagreeing layers": (
        lambda t: t.update({"encoder.layers.3.synth_att.synth_token.dense.weight": np.zeros((10, 64))}),
        "synth_token.dense.weight"),
    "used value_reduce missing": (lambda t: t.pop("encoder.layers.0.synth_att.synth_token.value_reduce.weight"),
                                  "value_reduce.weight"),
    "non-finite weight": (lambda t: t["fc.bias"].__setitem__(3, np.nan), "fc.bias"),
    "infinite weight": (lambda t: t["norm.weight"].__setitem__(0, np.inf), "norm.weight"),
    "bad T": (lambda t: t.update({"l_interp.weight": np.zeros((100, 11)), "l_interp.bias": np.zeros(100)}), "l_interp"),
    "module prefix": (lambda t: t.update({"module." + k: t.pop(k) for k in list(t)}), "l_interp.weight"),
    "1-d weight": (lambda t: t.update({"encoder_emb.weight": np.zeros(64)}), "encoder_emb.weight"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_inconsistent_tensor_sets_are_refused(case):
    change, named = BROKEN[case]
    tensors = mutate(change)
    for loader, load in loaders():
        with pytest.raises(msf.WeightsError, match=named.replace(".", r"\.")):
            load(tensors)
            pytest.fail(f"{loader} accepted {case}")


def test_metadata_is_checked():
    tensors = random_state_dict(CONFIG)
    with pytest.raises(msf.WeightsError, match="format"):
        msf.Model.from_tensors(tensors, {"format": "pt"})
    with pytest.raises(msf.WeightsError, match="format_version"):
        msf.Model.from_tensors(tensors, {"format": "msf", "format_version": "2"})
    with pytest.raises(msf.WeightsError, match="disagrees"):
        msf.Model.from_tensors(tensors, {"config": json.dumps({"K": 5})})
    with pytest.raises(msf.WeightsError, match="pose"):
        msf.Model.from_tensors(tensors, {"pose": json.dumps({"joints": ["a"] * 16, "dims": 3})})
    with pytest.raises(msf.WeightsError, match="JSON"):
        msf.Model.from_tensors(tensors, {"pose": "{"})
    bad = ({"format": "pt"}, {"format_version": "2"}, {"config": json.dumps({"K": 5})},
           {"config": json.dumps({"C": "64"})}, {"config": json.dumps({"L": 4.0})}, {"config": "[1]"},
           {"config": "{"}, {"pose": json.dumps({"joints": ["a"] * 16, "dims": 3})},
           {"pose": json.dumps({"joints": ["a"] * 17})}, {"pose": json.dumps({"dims": 3})},
           {"pose": json.dumps({"joints": "abc", "dims": 3})}, {"pose": "{"})
    for loader, load in loaders():
        for metadata in bad:
            with pytest.raises(msf.WeightsError):
                load(tensors, metadata)
                pytest.fail(f"{loader} accepted {metadata}")
        ok = {"config": CONFIG.to_json(), "pose": json.dumps({"joints": ["a"] * 17, "dims": 3, "units": "mm"})}
        load(tensors, ok)


@pytest.mark.parametrize("field, value", [
    ("units", 3), ("skeleton", ["h36m17"]), ("root_joints", "pelvis"), ("root_joints", [0.5]),
    ("root_relative", 1), ("image_normalised", "yes"), ("parents", [0, True]), ("joints", [1] * 17),
])
def test_pose_fields_of_another_type_are_refused(field, value):
    """A malformed pose convention is refused at load, naming the field, never read as something else
    (both loaders check every field: tests/test_weights.py)."""
    pose = {"joints": ["a"] * 17, "dims": 3, "units": "mm", field: value}
    with pytest.raises(msf.WeightsError, match=f"metadata pose '{field}' is"):
        msf.Model.from_tensors(random_state_dict(CONFIG), {"pose": json.dumps(pose)})
    if field != "joints":  # null: not stated (joints and dims, present, must describe P: tested above)
        msf.Model.from_tensors(random_state_dict(CONFIG), {"pose": json.dumps(dict(pose, **{field: None}))})


@pytest.mark.parametrize("roots", [[99], [17], [], ["pelvis"], [0, 0], [-1]])
def test_root_joints_that_name_no_joint_are_refused_at_load(roots):
    """A root-relative file's root_joints must be joints of the file: refused at load, not at the first recover."""
    pose = {"joints": [f"j{i}" for i in range(17)], "dims": 3, "units": "mm", "root_relative": True,
            "root_joints": roots}
    with pytest.raises(msf.WeightsError, match="metadata pose root_joints"):
        msf.Model.from_tensors(random_state_dict(CONFIG), {"pose": json.dumps(pose)})


def test_root_joints_may_be_named():
    pose = {"joints": [f"j{i}" for i in range(17)], "dims": 3, "units": "mm", "root_relative": True,
            "root_joints": ["j2", 3]}
    refiner = msf.Refiner(msf.Model.from_tensors(random_state_dict(CONFIG), {"pose": json.dumps(pose)}))
    assert refiner.convention.root_indices(17) == [2, 3]
