"""The weight file: round trips, the safetensors package, and malformed files in both parsers."""
import contextlib
import json
import os
import struct
import subprocess
import sys
import threading
import warnings
from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import msf
from helpers import HAS_CPP, HAS_KERNELS, OFFICIAL, official_config, random_state_dict, requires_kernels
from msf import pose as pose_, weights
from msf.config import Config

if HAS_CPP:
    from msf import _core
if HAS_KERNELS:
    from msf import _kernels


def small_file(metadata=None) -> bytes:
    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1.5], np.float32),
               "empty": np.zeros((0, 4), np.float32)}
    return weights.to_bytes(tensors, metadata or {"format": "msf"})


def raw_file(header: dict, body: bytes = b"", header_len: int | None = None) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text) if header_len is None else header_len) + text + body


def parsers():
    """Every parser of the product: the Python one and, when built, the C++ one."""
    yield "python", lambda data: weights.parse(data).tensors
    if HAS_KERNELS:
        yield "cpp", lambda data: _kernels.parse_safetensors(bytes(data))[0]


def test_round_trip_and_metadata():
    data = small_file({"format": "msf", "note": "ünïcode ✓"})
    parsed = weights.parse(data)
    assert parsed.metadata == {"format": "msf", "note": "ünïcode ✓"}
    np.testing.assert_array_equal(parsed.tensors["a"], np.arange(6).reshape(2, 3))
    assert parsed.tensors["empty"].shape == (0, 4)
    if HAS_KERNELS:
        tensors, metadata = _kernels.parse_safetensors(data)
        assert metadata == parsed.metadata
        for k, v in parsed.tensors.items():
            np.testing.assert_array_equal(tensors[k], v)


def test_model_file_round_trip(tmp_path, backend):
    config = official_config(*OFFICIAL["pw3d"])
    tensors = random_state_dict(config)
    path = tmp_path / "m.safetensors"
    weights.write(path, tensors, {"format": "msf", "format_version": "1", "config": config.to_json()})
    refiner = msf.Refiner.load(path, backend=backend)
    assert refiner.config == config
    kf = np.random.default_rng(0).standard_normal((config.n_keyframes, config.P))
    from_memory = msf.Refiner(msf.Model.from_tensors(tensors), backend).refine(kf)
    np.testing.assert_array_equal(refiner.refine(kf), from_memory)
    np.testing.assert_array_equal(msf.Refiner.load(path.read_bytes(), backend=backend).refine(kf), from_memory)
    if HAS_CPP:
        np.testing.assert_array_equal(_core.Model.from_file(str(path)).refine(kf[None].astype(np.float32))[0],
                                      msf.Refiner(msf.Model.from_tensors(tensors), "cpp").refine(kf))


def test_safetensors_package_interoperates(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    config = official_config(*OFFICIAL["jhmdb"])
    tensors = {k: v.astype(np.float32) for k, v in random_state_dict(config).items()}
    ours = tmp_path / "ours.safetensors"
    weights.write(ours, tensors, {"format": "msf"})
    loaded = st_numpy.load_file(str(ours))
    assert set(loaded) == set(tensors)
    for k in tensors:
        np.testing.assert_array_equal(loaded[k], tensors[k])
    theirs = tmp_path / "theirs.safetensors"
    mixed = {k: (v.astype(np.float16) if "bias" in k else v.astype(np.float64)) for k, v in tensors.items()}
    st_numpy.save_file(mixed, str(theirs), metadata={"format": "msf"})
    for name, parse in parsers():
        read = parse(theirs.read_bytes())
        for k, v in mixed.items():
            np.testing.assert_array_equal(read[k], v.astype(np.float32), err_msg=f"{name} {k}")


MALFORMED = {
    "empty file": b"",
    "shorter than the length": b"\x01\x00\x00",
    "header past the end": struct.pack("<Q", 100) + b"{}",
    "header over the cap": struct.pack("<Q", 2**40) + b"{}",
    "not utf-8": struct.pack("<Q", 4) + b"\xff\xfe{}",
    "not json": struct.pack("<Q", 3) + b"{x}",
    "not an object": raw_file([1, 2]),
    "duplicate key": struct.pack("<Q", 2 * 61 + 1)
    + b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    + bytes(4),
    "unsupported dtype": raw_file({"a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}, bytes(8)),
    "negative shape": raw_file({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, bytes(4)),
    "float shape": raw_file({"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}, bytes(4)),
    "size mismatch": raw_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, bytes(8)),
    "offsets reversed": raw_file({"a": {"dtype": "F32", "shape": [0], "data_offsets": [4, 0]}}, bytes(8)),
    "data past the end": raw_file({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(8)),
    "overlap": raw_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)),
    "hole between tensors": raw_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                      "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, bytes(12)),
    "hole at the start": raw_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(8)),
    "trailing bytes": raw_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, bytes(6)),
    "extra entry field": raw_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}}, bytes(4)),
    "metadata not strings": raw_file({"__metadata__": {"a": 1}}),
    "huge shape": raw_file({"a": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 4]}}, bytes(4)),
    "deep nesting": struct.pack("<Q", 20000) + b"[" * 10000 + b"]" * 10000,
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_are_refused_by_every_parser(case):
    for name, parse in parsers():
        with pytest.raises(msf.WeightsError):
            parse(MALFORMED[case])
            pytest.fail(f"{name} parser accepted {case!r}")


def test_missing_file_and_unknown_name():
    with pytest.raises(msf.WeightsError, match="no weights file"):
        msf.Refiner.load("/nonexistent/model.safetensors")
    with pytest.raises(msf.WeightsError):
        msf.Refiner.load(b"not a weights file at all")


def test_torch_files_point_to_the_converter():
    for data in (b"PK\x03\x04" + bytes(60), b"\x80\x02\x8a\x0al" + bytes(60)):
        with pytest.raises(msf.WeightsError, match="msf convert"):
            msf.Refiner.load(data)


def test_directory_is_refused(tmp_path):
    with pytest.raises(msf.WeightsError):
        msf.Refiner.load(tmp_path)


# --- issue 11, item 8: both readers give the same verdict on every file, with the same limits ---------------

TINY = Config(K=4, Q=1, P=4, C=4, L=1, ffn_hidden=8, d_t=2, d_c=4, se_t=1, se_c=1, reweight_hidden=2)
POSE = '{"skeleton": "generic", "joints": ["a", "b"], "dims": 2}'


def member(name_text: str, dtype: str, shape_text: str, begin: int, end: int) -> str:
    """One header member as raw JSON text (name_text already quoted, so it can hold any escape)."""
    return f'{name_text}:{{"dtype":"{dtype}","shape":{shape_text},"data_offsets":[{begin},{end}]}}'


def st_file(members: list[str], body: bytes = b"", metadata: dict | None = None, metadata_text: str | None = None,
            header_len: int | None = None) -> bytes:
    """A safetensors file from raw header members; metadata values are JSON-escaped, metadata_text is raw."""
    if metadata is not None:
        metadata_text = json.dumps(metadata)
    if metadata_text is not None:
        members = [f'"__metadata__":{metadata_text}', *members]
    text = ("{" + ",".join(members) + "}").encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text) if header_len is None else header_len) + text + body


def tiny_model_file(metadata: dict | None = None, tensors: dict | None = None) -> bytes:
    tensors = tensors or random_state_dict(TINY, seed=5)
    meta = {"format": "msf", "format_version": "1", "config": TINY.to_json(), "pose": POSE}
    meta.update(metadata or {})
    return weights.to_bytes({k: np.asarray(v, np.float32) for k, v in tensors.items()},
                            {k: v for k, v in meta.items() if v is not None})


def parse_verdicts(data: bytes) -> dict:
    """name -> the parsed tensors (names, shapes, bytes) and metadata, or 'refused' (a WeightsError)."""
    out = {}
    for name, parse in (("python", lambda d: (lambda w: (w.tensors, w.metadata))(weights.parse(d))),
                        *((("cpp", lambda d: _kernels.parse_safetensors(d)),) if HAS_KERNELS else ())):
        try:
            tensors, metadata = parse(data)
            out[name] = (sorted((k, v.shape, v.tobytes()) for k, v in tensors.items()), sorted(metadata.items()))
        except msf.WeightsError:
            out[name] = "refused"
    return out


def load_verdicts(data: bytes, python_config=lambda data: msf.Model.from_weights(weights.parse(data)).config) -> dict:
    """name -> the loaded model's config, or 'refused' (a WeightsError): the readers and the model checks
    (python_config: the Python loader)."""
    out = {}
    try:
        out["python"] = sorted(asdict(python_config(data)).items())
    except msf.WeightsError:
        out["python"] = "refused"
    if HAS_CPP:
        try:
            out["cpp"] = sorted(_core.Model.from_buffer(data).config.items())
        except msf.WeightsError:
            out["cpp"] = "refused"
    return out


def show(data: bytes) -> str:
    return repr(data if len(data) <= 600 else data[:300] + b"..." + data[-300:]) + f" ({len(data)} bytes)"


def assert_verdict(verdicts: dict, expected: str, data: bytes, case: str) -> None:
    for name, verdict in verdicts.items():
        got = "refused" if verdict == "refused" else "accepted"
        assert got == expected, f"{case}: the {name} reader {got} it, expected {expected}: {show(data)}"
    assert len({repr(v) for v in verdicts.values()}) == 1, f"{case}: readers disagree {verdicts}: {show(data)}"


def pose_with(text: str) -> dict:
    """Metadata whose pose JSON has `"x": text` (raw JSON) besides the usual members."""
    return {"pose": POSE[:-1] + f', "x": {text}}}'}


F32_1 = struct.pack("<f", 1.0)
BIG = "1" + "0" * 4300  # 4301 digits

# (file, expected verdict of both safetensors readers)
PARSE_CASES = {
    "huge int in a shape": (st_file([member('"t"', "F32", f"[{BIG}]", 0, 4)], F32_1), "refused"),
    "huge int in an empty shape": (st_file([member('"t"', "F32", f"[0,{BIG}]", 0, 0)]), "refused"),
    "huge negative int in a shape": (st_file([member('"t"', "F32", f"[-{BIG}]", 0, 4)], F32_1), "refused"),
    "huge int in data_offsets": (st_file([member('"t"', "F32", "[1]", 0, BIG)], F32_1), "refused"),
    "64 dims": (st_file([member('"t"', "F32", json.dumps([1] * 64), 0, 4)], F32_1), "accepted"),
    "65 dims": (st_file([member('"t"', "F32", json.dumps([1] * 65), 0, 4)], F32_1), "refused"),
    "65 dims, empty": (st_file([member('"t"', "F32", json.dumps([0] * 65), 0, 0)]), "refused"),
    "empty, nonzero dims at the element cap": (
        st_file([member('"t"', "F32", f"[0,{weights.MAX_SHAPE_ELEMENTS}]", 0, 0)]), "accepted"),
    "empty, nonzero dims over the element cap": (
        st_file([member('"t"', "F32", f"[0,{weights.MAX_SHAPE_ELEMENTS + 1}]", 0, 0)]), "refused"),
    "empty, nonzero dims overflowing int64": (st_file([member('"t"', "F32", f"[0,{2**62},{2**62}]", 0, 0)]),
                                              "refused"),
    "empty, a dim over int64": (st_file([member('"t"', "F32", f"[0,{2**63}]", 0, 0)]), "refused"),
    "shape product overflowing uint64": (st_file([member('"t"', "F32", f"[{2**32},{2**32},{2**32}]", 0, 4)], F32_1),
                                         "refused"),
    "negative zero in a shape": (st_file([member('"t"', "F32", "[-0]", 0, 0)]), "refused"),
    "negative zero in data_offsets": (st_file([member('"t"', "F32", "[1]", "-0", 4)], F32_1), "refused"),
    "dtype is a list": (st_file(['"t":{"dtype":[],"shape":[1],"data_offsets":[0,4]}'], F32_1), "refused"),
    "lone high surrogate in a tensor name": (st_file([member('"t\\ud800"', "F32", "[1]", 0, 4)], F32_1), "refused"),
    "lone low surrogate in a tensor name": (st_file([member('"\\udc00"', "F32", "[1]", 0, 4)], F32_1), "refused"),
    "reversed surrogates in a tensor name": (st_file([member('"\\udc00\\ud800"', "F32", "[1]", 0, 4)], F32_1),
                                             "refused"),
    "surrogate pair in a tensor name": (st_file([member('"\\ud83d\\ude00"', "F32", "[1]", 0, 4)], F32_1), "accepted"),
    "lone surrogate in a metadata key": (st_file([], metadata_text='{"k\\ud800":"v"}'), "refused"),
    "lone surrogate in a metadata value": (st_file([], metadata_text='{"k":"\\udbff"}'), "refused"),
    "high surrogate then a letter": (st_file([], metadata_text='{"k":"\\ud800\\u0041"}'), "refused"),
    "header 64 deep": (st_file(['"x":' + "[" * 63 + "]" * 63]), "refused"),  # the schema refuses it
    "header 100k deep": (st_file(['"x":' + "[" * 100_000 + "]" * 100_000]), "refused"),
    "header 100k deep objects": (st_file(['"x":' + '{"a":' * 100_000 + "1" + "}" * 100_000]), "refused"),
    "header 100k deep, unclosed": (st_file(['"x":' + "[" * 100_000]), "refused"),
    "NaN in the header": (st_file(['"x":NaN']), "refused"),
    "header length at the cap (file shorter)": (st_file([], header_len=weights.MAX_HEADER_BYTES), "refused"),
    "header length over the cap": (st_file([], header_len=weights.MAX_HEADER_BYTES + 1), "refused"),
    # a valid file whose header is 640 bytes starts with 80 02, as a protocol-2 pickle does
    "header of 640 bytes": (st_file([member('"t"', "F32", "[1]", 0, 4)],
                                    F32_1, metadata={"pad": "x" * 553}), "accepted"),
}


@pytest.mark.parametrize("case", sorted(PARSE_CASES))
def test_both_readers_give_the_same_verdict(case):
    data, expected = PARSE_CASES[case]
    assert_verdict(parse_verdicts(data), expected, data, case)


def test_header_of_640_bytes_is_not_taken_for_a_pickle():
    data = PARSE_CASES["header of 640 bytes"][0]
    assert data[:2] == b"\x80\x02" and len(weights.parse(data).tensors) == 1


NESTED_64 = "[" * 63 + "1" + "]" * 63  # 64 levels with the pose object around it
NESTED_65 = "[" * 64 + "]" * 64

# (metadata replacing the tiny model's, expected verdict of both loaders)
LOAD_CASES = {
    "the tiny model": ({}, "accepted"),
    "integer of 4300 digits in pose": (pose_with("9" * 4300), "accepted"),
    "integer of 4301 digits in pose": (pose_with(BIG), "refused"),
    "negative integer of 4301 digits in pose": (pose_with("-" + BIG), "refused"),
    "float of 5000 digits in pose": (pose_with("1" * 5000 + ".5"), "accepted"),
    "integer of 4301 digits in config": ({"config": TINY.to_json()[:-1] + f', "x": {BIG}}}'}, "refused"),
    "config K of 4301 digits": ({"config": TINY.to_json().replace('"K": 4', f'"K": {BIG}')}, "refused"),
    "pose dims of 4301 digits": ({"pose": POSE.replace('"dims": 2', f'"dims": {BIG}')}, "refused"),
    "pose 64 deep": (pose_with(NESTED_64), "accepted"),
    "pose 65 deep": (pose_with(NESTED_65), "refused"),
    "pose 65 deep objects": (pose_with('{"a":' * 64 + "1" + "}" * 64), "refused"),
    "pose 100k deep": (pose_with("[" * 100_000 + "]" * 100_000), "refused"),
    "pose 100k deep, unclosed": (pose_with("[" * 100_000), "refused"),
    "config 100k deep": ({"config": "[" * 100_000 + "]" * 100_000}, "refused"),
    "config 65 deep": ({"config": TINY.to_json()[:-1] + ', "x": ' + NESTED_65 + "}"}, "refused"),
    "brackets in pose strings do not nest": (pose_with(json.dumps("[" * 100 + "\\\"{" * 100)), "accepted"),
    "NaN in pose": (pose_with("NaN"), "refused"),
    "Infinity in pose": (pose_with("[Infinity]"), "refused"),
    "-Infinity in config": ({"config": TINY.to_json()[:-1] + ', "x": -Infinity}'}, "refused"),
    "1e999 in pose (a float, not a constant)": (pose_with("1e999"), "accepted"),
    "lone surrogate in a pose value": (pose_with('"\\ud800"'), "refused"),
    "lone surrogate in a pose key": ({"pose": POSE[:-1] + ', "\\udfff": 1}'}, "refused"),
    "lone surrogate in a joint name": ({"pose": POSE.replace('"a"', '"\\ud800"')}, "refused"),
    "surrogate pair in a pose value": (pose_with('"\\ud83d\\ude00"'), "accepted"),
    "duplicate pose key": ({"pose": POSE[:-1] + ', "dims": 2}'}, "refused"),
    "duplicate key nested in pose": (pose_with('{"a": 1, "a": 1}'), "refused"),
    "duplicate config key": ({"config": TINY.to_json()[:-1] + ', "K": 4}'}, "refused"),
    "pose joints null": ({"pose": '{"joints": null}'}, "refused"),
    "pose dims null": ({"pose": '{"dims": null}'}, "refused"),
    "pose joints and dims null": ({"pose": '{"joints": null, "dims": null}'}, "refused"),
    "pose without joints and dims": ({"pose": '{"skeleton": "generic"}'}, "accepted"),
    "pose dims true": ({"pose": POSE.replace('"dims": 2', '"dims": true')}, "refused"),
    "pose dims -0": ({"pose": '{"joints": [], "dims": -0}'}, "refused"),
    "pose not an object": ({"pose": "[]"}, "refused"),
    "config with K -0": ({"config": TINY.to_json().replace('"K": 4', '"K": -0')}, "refused"),
    # JSON whitespace (space, tab, LF, CR) around values: C++ kept what follows a value in its raw text
    "pretty-printed config": ({"config": json.dumps(json.loads(TINY.to_json()), indent=2)}, "accepted"),
    "pretty-printed pose": ({"pose": json.dumps(json.loads(POSE), indent=2)}, "accepted"),
    "space before a comma in config": ({"config": TINY.to_json().replace('"K": 4', '"K": 4 ')}, "accepted"),
    "tab, CR and LF around pose dims": ({"pose": POSE.replace('"dims": 2', '"dims":\t\r\n2\r\n\t')}, "accepted"),
    "vertical tab after pose dims": ({"pose": POSE.replace('"dims": 2', '"dims": 2\u000b')}, "refused"),
    # a root-relative file's root_joints: one or more distinct joints of its own (msf.pose._stated_roots)
    **{f"root_joints {text}{' (not root-relative)' if not relative else ''}{' without joints' if bare else ''}": (
        {"pose": (json.dumps({"skeleton": "generic", "root_relative": relative}) if bare else
                  POSE.replace("}", f', "root_relative": {json.dumps(relative)}}}'))[:-1]
         + f', "root_joints": {text}}}'}, verdict)
       for text, relative, bare, verdict in [
           ("[0]", True, False, "accepted"), ('["b"]', True, False, "accepted"), ('[1, "a"]', True, False, "accepted"),
           ("null", True, False, "accepted"), ("[]", True, False, "refused"), ("[2]", True, False, "refused"),
           ("[-1]", True, False, "refused"), ('["c"]', True, False, "refused"), ('[0, "a"]', True, False, "refused"),
           ("[0, -0]", True, False, "refused"), (f"[{10**30}]", True, False, "refused"),
           ("[5]", False, False, "accepted"), ("[]", False, False, "accepted"),
           ("[7]", True, True, "accepted"), (f"[{10**30}]", True, True, "accepted"), ('["a"]', True, True, "refused"),
           ("[-0]", True, True, "accepted"), ("[0, 0]", True, True, "refused"), ("[-2]", True, True, "refused"),
       ]},
    # a repeated joint name resolves to its last index, as Python's dict keeps it
    "root joint named twice over": ({"pose": '{"joints": ["a", "a"], "dims": 2, "root_relative": true, '
                                             '"root_joints": ["a", 1]}'}, "refused"),
    "root joint of a repeated name and another": ({"pose": '{"joints": ["a", "a"], "dims": 2, '
                                                           '"root_relative": true, "root_joints": ["a", 0]}'},
                                                  "accepted"),
}


@pytest.mark.parametrize("case", sorted(LOAD_CASES))
def test_both_loaders_give_the_same_verdict_on_metadata(case):
    metadata, expected = LOAD_CASES[case]
    data = tiny_model_file(metadata)
    assert_verdict(load_verdicts(data), expected, data, case)


def test_pose_dims_that_overflow_j_times_d_are_refused():
    """j * d wrapped around 2**64 in C++: 32 joints x (2**59 + 1) dims passed for P = 32."""
    config = Config(K=4, Q=1, P=32, C=4, L=1, ffn_hidden=8, d_t=2, d_c=4, se_t=1, se_c=1, reweight_hidden=2)
    pose = json.dumps({"joints": [f"j{i}" for i in range(32)], "dims": 2**59 + 1})
    data = weights.to_bytes({k: np.asarray(v, np.float32) for k, v in random_state_dict(config).items()},
                            {"format": "msf", "pose": pose})
    assert_verdict(load_verdicts(data), "refused", data, "dims 2**59 + 1")


def test_non_finite_unused_value_reduce_is_refused_by_both_loaders():
    tensors = random_state_dict(TINY, seed=5)  # d_c == C: the channel value_reduce is kept but unused
    name = "encoder.layers.0.synth_att.synth_channel.value_reduce.weight"
    assert name in tensors and name not in TINY.expected_shapes()
    tensors[name] = tensors[name].copy()
    tensors[name][0, 0] = np.nan
    data = tiny_model_file(tensors=tensors)
    assert_verdict(load_verdicts(data), "refused", data, "NaN in an unused value_reduce")
    with pytest.raises(msf.WeightsError, match="value_reduce.weight' contains NaN"):
        msf.Model.from_tensors(tensors)


def test_deep_json_is_a_weights_error_naming_the_metadata_key():
    for key, text in (("pose", "[" * 100_000 + "]" * 100_000), ("config", '{"a":' * 100_000)):
        with pytest.raises(msf.WeightsError, match=rf"metadata '{key}' nests arrays and objects \d+ deep, over "
                                                   rf"the limit of 64"):
            msf.Model.from_weights(weights.parse(tiny_model_file({key: text})))


def test_messages_name_the_problem_and_the_place():
    cases = [
        (tiny_model_file(pose_with(BIG)), r"metadata 'pose' has an integer of 4301 digits, over the limit of 4300"),
        (tiny_model_file(pose_with("NaN")), r"metadata 'pose' contains the non-JSON constant NaN"),
        (tiny_model_file(pose_with('"\\ud800"')), r"metadata 'pose' has a lone surrogate"),
        (tiny_model_file({"pose": POSE[:-1] + ', "dims": 2}'}), r"metadata 'pose' has duplicate keys: \['dims'\]"),
        (PARSE_CASES["65 dims"][0], r"tensor 't': shape has 65 dimensions, more than 64"),
        (PARSE_CASES["empty, nonzero dims over the element cap"][0], r"tensor 't': shape has too many elements"),
        (PARSE_CASES["huge int in a shape"][0], r"safetensors header has an integer of 4301 digits"),
        (PARSE_CASES["lone high surrogate in a tensor name"][0],
         r"safetensors header has a lone surrogate .* 't\\ud800'"),
        (PARSE_CASES["header 100k deep"][0],
         r"safetensors header nests arrays and objects \d+ deep, over the limit of 64"),
    ]
    for data, pattern in cases:
        with pytest.raises(msf.WeightsError, match=pattern):
            msf.Model.from_weights(weights.parse(data))


def test_metadata_json_is_never_a_plain_value_error_or_recursion_error():
    for text in (BIG, "[" * 100_000, "NaN", '"\\ud800"', "[" * 100_000 + "]" * 100_000, '{"a":1,"a":2}'):
        with pytest.raises(msf.WeightsError):
            msf.Model.from_tensors(random_state_dict(TINY), {"pose": text})


def test_implausibly_large_sizes_are_refused_as_in_cpp():
    tensors = random_state_dict(TINY)
    tensors["encoder_emb.weight"] = np.broadcast_to(np.float32(0), (4, (1 << 24) + 1))  # no memory
    with pytest.raises(msf.WeightsError, match="'encoder_emb.weight' is implausibly large"):
        msf.Model.from_tensors(tensors)


@requires_kernels
def test_limits_are_the_cpp_readers():
    for name in ("MAX_HEADER_BYTES", "MAX_JSON_DEPTH", "MAX_INTEGER_DIGITS", "MAX_SHAPE_DIMS", "MAX_SHAPE_ELEMENTS"):
        assert getattr(weights, name) == getattr(_kernels, name), f"{name}: Python {getattr(weights, name)}, " \
                                                                  f"C++ {getattr(_kernels, name)}"
    assert weights.MAX_HEADER_BYTES == 100_000_000


def test_header_length_cap_is_100_million_bytes_in_both_readers():
    """A real header exactly at the cap is read; one byte more is refused (Python allowed 100 MiB before)."""
    for extra, expected in ((0, "accepted"), (1, "refused")):
        text = b"{}" + b" " * (weights.MAX_HEADER_BYTES + extra - 2)
        data = struct.pack("<Q", len(text)) + text
        assert_verdict(parse_verdicts(data), expected, data[:16], f"header of {len(text)} bytes")
        del data, text


# --- the hypothesis cross-check: mutated files, both readers, the same verdict ------------------------------

MAX_ELEMENTS = (2**63 - 1) // 4  # weights.MAX_SHAPE_ELEMENTS, spelled out so that the test states the rule
HEADER_CAP = 100_000_000
# raw JSON values that sit on or across one of the shared limits
FRAGMENTS = [
    BIG, "-" + BIG, "9" * 4300, "-0", "NaN", "Infinity", "-Infinity", "1e999", "[" * 63 + "]" * 63,
    "[" * 63 + "1" + "]" * 63, "[" * 64 + "]" * 64, "[" * 65 + "]" * 65, '{"a":' * 64 + "1" + "}" * 64,
    "[" * 100_000 + "]" * 100_000, "[" * 100_000, '"\\ud800"', '"\\udc00"', '"\\ud800\\u0041"',
    '"\\ud83d\\ude00"', '{"a":1,"a":2}', '{"a":1,"\\u0061":2}', '"[[[{{{"',
]
ESCAPES = ["\\ud800", "\\udfff", "\\udc00\\ud800", "\\ud800\\u0041", "\\ud83d\\ude00", "\\u00e9", "\\u0000"]
SHAPES_B = [json.dumps([1] * n) for n in (0, 1, 63, 64, 65)]  # tensor b holds one F32
SHAPES_EMPTY = ["[0,4]", f"[0,{MAX_ELEMENTS}]", f"[0,{MAX_ELEMENTS + 1}]", f"[0,{2**63 - 1}]", f"[0,{2**63}]",
                f"[0,{BIG}]", "[-0,4]", json.dumps([0] * 64), json.dumps([0] * 65), f"[{2**32},0,{2**32}]",
                f"[{2**30},0,{2**31 - 1}]"]
HEADER_LENGTHS = [HEADER_CAP - 1, HEADER_CAP, HEADER_CAP + 1, 100 << 20, 2**63]


def byte_mutations(data, base: bytearray) -> bytearray:
    for _ in range(data.draw(st.integers(0, 3), label="byte mutations")):
        kind = data.draw(st.sampled_from(["flip", "truncate", "insert"]), label="kind")
        pos = data.draw(st.integers(0, max(0, len(base) - 1)), label="pos")
        if kind == "flip" and base:
            base[pos] ^= data.draw(st.integers(1, 255), label="xor")
        elif kind == "truncate":
            del base[pos:]
        else:
            base[pos:pos] = data.draw(st.binary(min_size=1, max_size=8), label="bytes")
    return base


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_files_raise_only_weights_error_and_parsers_agree(data):
    """Files near every shared limit (huge integers, nesting depth, > 64 dims, element counts, lone
    surrogates, NaN, repeated keys, the header cap), then byte-level damage: the same verdict from both."""
    names = {"a": '"a"', "b": '"b"', "empty": '"empty"'}
    shapes = {"a": "[2,3]", "b": "[1]", "empty": "[0,4]"}
    metadata_text, extra, header_len = '{"format":"msf"}', [], None
    for _ in range(data.draw(st.integers(0, 3), label="structured mutations")):
        kind = data.draw(st.sampled_from(["shape b", "shape empty", "name", "metadata key", "metadata value",
                                          "metadata fragment", "member fragment", "header length"]), label="kind")
        if kind == "shape b":
            shapes["b"] = data.draw(st.sampled_from(SHAPES_B), label="shape")
        elif kind == "shape empty":
            shapes["empty"] = data.draw(st.sampled_from(SHAPES_EMPTY), label="shape")
        elif kind == "name":
            names["b"] = '"b' + data.draw(st.sampled_from(ESCAPES), label="escape") + '"'
        elif kind == "metadata key":
            metadata_text = '{"k' + data.draw(st.sampled_from(ESCAPES), label="escape") + '":"v"}'
        elif kind == "metadata value":
            metadata_text = '{"k":"v' + data.draw(st.sampled_from(ESCAPES), label="escape") + '"}'
        elif kind == "metadata fragment":
            metadata_text = '{"k":' + data.draw(st.sampled_from(FRAGMENTS), label="fragment") + "}"
        elif kind == "member fragment":
            extra = ['"x":' + data.draw(st.sampled_from(FRAGMENTS), label="fragment")]
        else:
            header_len = data.draw(st.sampled_from(HEADER_LENGTHS), label="header length")
    members = [member(names["a"], "F32", shapes["a"], 0, 24), member(names["b"], "F32", shapes["b"], 24, 28),
               member(names["empty"], "F32", shapes["empty"], 28, 28), *extra]
    body = np.arange(7, dtype="<f4").tobytes()
    mutated = bytes(byte_mutations(data, bytearray(st_file(members, body, metadata_text=metadata_text,
                                                           header_len=header_len))))
    verdicts = parse_verdicts(mutated)
    assert len({repr(v) for v in verdicts.values()}) == 1, f"readers disagree on {show(mutated)}: {verdicts}"


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_metadata_gives_the_same_verdict_in_both_loaders(data):
    """The tiny model with its config and pose JSON mutated near the shared limits (and then damaged):
    msf.Model (NumPy side) and msf::Model (C++) accept or refuse together, and agree on the config."""
    pose = {"skeleton": '"generic"', "joints": '["a","b"]', "dims": "2"}
    config = {k: str(v) for k, v in asdict(TINY).items()}
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        kind = data.draw(st.sampled_from(["pose value", "pose key", "pose joints", "pose dims", "config value",
                                          "config key", "drop"]), label="kind")
        fragment = data.draw(st.sampled_from(FRAGMENTS + ["null", "true", "4", "2", "[]", '["a"]']), label="fragment")
        if kind == "pose value":
            pose["x"] = fragment
        elif kind == "pose key":
            pose['"k' + data.draw(st.sampled_from(ESCAPES), label="escape") + '"'] = "1"
        elif kind == "pose joints":
            pose["joints"] = fragment
        elif kind == "pose dims":
            pose["dims"] = fragment
        elif kind == "config value":
            config[data.draw(st.sampled_from(sorted(config)), label="key")] = fragment
        elif kind == "config key":
            config["x"] = fragment
        else:
            pose.pop(data.draw(st.sampled_from(sorted(pose)), label="dropped"), None)
    def text(members):
        return "{" + ",".join(f'{k if k.startswith(chr(34)) else json.dumps(k)}:{v}' for k, v in members.items()) + "}"
    base = bytearray(tiny_model_file({"pose": text(pose), "config": text(config)}))
    mutated = bytes(byte_mutations(data, base))
    verdicts = load_verdicts(mutated)
    assert len({repr(v) for v in verdicts.values()}) == 1, f"loaders disagree on {show(mutated)}: {verdicts}"


# --- pose field types, the prediction metadata, and readers that must not wait or run out of memory --------

POSE_FIELD_VALUES = ['"x"', "2", "-1", "0.5", "2.0", "true", "null", "[]", '["a", "b"]', "[0, 1]", "[1, -1]",
                     '[0, "b"]', "[true]", "[0.5]", "[[0]]", "{}"]


@pytest.mark.parametrize("key", sorted(pose_._FIELD_TYPES))
def test_pose_field_types_are_checked_by_both_loaders(key):
    """Every field msf.pose checks the type of (its _FIELD_TYPES), with a value of every JSON type: the C++
    loader accepts and refuses the same (it took "joints": [1, 2], "units": 5, "root_relative": "yes", ...)."""
    verdicts = {}
    for value in POSE_FIELD_VALUES:
        members = {"skeleton": '"generic"', "joints": '["a", "b"]', "dims": "2", "root_relative": "true",
                   "root_joints": "[0]", key: value}
        data = tiny_model_file({"pose": "{" + ", ".join(f'"{k}": {v}' for k, v in members.items()) + "}"})
        got = load_verdicts(data)
        assert len({repr(v) for v in got.values()}) == 1, f"{key}: {value}: loaders disagree {got}"
        verdicts[value] = got["python"] != "refused"
    assert not all(verdicts.values()) and any(verdicts.values()), f"{key}: {verdicts}"


PREDICTION_CONFIG = Config(K=1, Q=4, P=4, C=4, L=1, ffn_hidden=8, d_t=2, d_c=4, se_t=1, se_c=1, reweight_hidden=2)
PREDICTION = '{"history_frames": 3, "future_frames": 2, "fps": 25}'  # T = 5


def prediction_file(text: str, config: Config = PREDICTION_CONFIG) -> bytes:
    metadata = {"format": "msf", "config": config.to_json(), "pose": POSE, "prediction": text}
    return weights.to_bytes({k: np.asarray(v, np.float32) for k, v in random_state_dict(config, seed=5).items()},
                            metadata)


def refiner_verdicts(data: bytes) -> dict:
    """load_verdicts with msf.Refiner, which also reads the prediction metadata."""
    return load_verdicts(data, lambda data: msf.Refiner.load(data, backend="numpy").config)


def with_prediction(**fields) -> str:
    return json.dumps({**json.loads(PREDICTION), **fields})


PREDICTION_CASES = {
    "valid": (PREDICTION, "accepted"),
    "pretty-printed": (json.dumps(json.loads(PREDICTION), indent=2), "accepted"),
    "fps 12.5": (with_prediction(fps=12.5), "accepted"),
    "fps 1e300": (PREDICTION.replace("25", "1e300"), "accepted"),
    "fps of 300 digits": (PREDICTION.replace("25", "1" * 300), "accepted"),
    "fps the smallest normal double": (PREDICTION.replace("25", "2.2250738585072014e-308"), "accepted"),
    "an extra member": (with_prediction(note="x"), "accepted"),
    "strings": ('{"history_frames": "3", "future_frames": "2", "fps": "25"}', "refused"),
    "fps a string": (with_prediction(fps="25"), "refused"),
    "fractional frames": ('{"history_frames": 3.5, "future_frames": 2, "fps": 25}', "refused"),
    "frames 3.0": ('{"history_frames": 3.0, "future_frames": 2, "fps": 25}', "refused"),
    "frames 3e0": ('{"history_frames": 3e0, "future_frames": 2, "fps": 25}', "refused"),
    "frames true": ('{"history_frames": 4, "future_frames": true, "fps": 25}', "refused"),
    "fps true": (with_prediction(fps=True), "refused"),
    "duplicate fps": (PREDICTION[:-1] + ', "fps": 50}', "refused"),
    "fps NaN": (PREDICTION.replace("25", "NaN"), "refused"),
    "fps Infinity": (PREDICTION.replace("25", "Infinity"), "refused"),
    "fps 1e999": (PREDICTION.replace("25", "1e999"), "refused"),
    "fps of 400 digits": (PREDICTION.replace("25", "1" * 400), "refused"),
    "fps subnormal": (PREDICTION.replace("25", "1e-320"), "refused"),
    "fps just below the smallest normal": (PREDICTION.replace("25", "2.225073858507201e-308"), "refused"),
    "fps 1e-400 (zero)": (PREDICTION.replace("25", "1e-400"), "refused"),
    "fps 0": (with_prediction(fps=0), "refused"),
    "fps -25": (with_prediction(fps=-25), "refused"),
    "fps missing": ('{"history_frames": 3, "future_frames": 2}', "refused"),
    "fps null": (with_prediction(fps=None), "refused"),
    "frames that do not sum to T": (with_prediction(future_frames=3), "refused"),
    "history 1": ('{"history_frames": 1, "future_frames": 4, "fps": 25}', "refused"),
    "history of 19 digits": (with_prediction(history_frames=10**18, future_frames=5 - 10**18), "refused"),
    "not an object": ("[3, 2, 25]", "refused"),
    "not JSON": ("history 3", "refused"),
    "100k deep": ("[" * 100_000, "refused"),
    "65 deep in an extra member": (PREDICTION[:-1] + ', "x": ' + NESTED_65 + "}", "refused"),
}


@pytest.mark.parametrize("case", sorted(PREDICTION_CASES))
def test_both_loaders_give_the_same_verdict_on_the_prediction_metadata(case):
    """The `prediction` metadata, read loosely before (strings, 10.5 truncated, the last of two fps, NaN,
    RecursionError on deep text) and not at all in C++: strict types, positive normal fps, the same verdicts."""
    text, expected = PREDICTION_CASES[case]
    data = prediction_file(text)
    assert_verdict(refiner_verdicts(data), expected, data, case)


def test_prediction_metadata_on_a_keyframe_model_is_refused_by_both_loaders():
    data = tiny_model_file({"prediction": '{"history_frames": 3, "future_frames": 2, "fps": 25}'})  # K = 4, T = 5
    assert_verdict(refiner_verdicts(data), "refused", data, "prediction on a keyframe model")


def test_deep_prediction_metadata_is_a_weights_error_naming_it():
    with pytest.raises(msf.WeightsError, match=r"metadata 'prediction' nests arrays and objects \d+ deep"):
        msf.Refiner.load(prediction_file("[" * 100_000), backend="numpy")
    assert msf.Refiner.load(prediction_file(PREDICTION), backend="numpy").prediction.fps == 25.0


def test_f64_beyond_float32_becomes_inf_without_a_warning():
    """The cast overflowed with a RuntimeWarning, an exception under -W error, instead of inf then WeightsError."""
    data = st_file([member('"t"', "F64", "[2]", 0, 16)], struct.pack("<2d", 1e300, -1e300))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert weights.parse(data).tensors["t"].tolist() == [np.inf, -np.inf]
    assert_verdict(parse_verdicts(data), "accepted", data, "F64 beyond float32")
    tensors = random_state_dict(TINY, seed=5)
    tensors["fc.bias"] = np.full(tensors["fc.bias"].shape, 1e300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(msf.WeightsError, match="'fc.bias' contains NaN or infinite values"):
            msf.Model.from_tensors(tensors)


class CountingKey(str):
    """A key that counts its comparisons with other keys."""

    comparisons = 0

    def __eq__(self, other):
        CountingKey.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_duplicate_keys_are_found_in_one_pass():
    """Counting each key's occurrences (keys.count) was quadratic: a 540 KB header of 50,000 keys, one
    repeated, took 26 s. The keys must be compared about once each."""
    n = 2000
    CountingKey.comparisons = 0
    with pytest.raises(weights._Refused, match=r"duplicate keys: \['k0', 'k7'\]"):
        weights._no_duplicates([(CountingKey(f"k{i}"), 0) for i in range(n)] + [(CountingKey("k7"), 0),
                                                                                 (CountingKey("k0"), 0)])
    assert CountingKey.comparisons < 10 * n


class CountingShapes(dict):
    """Shapes that count the passes over their names."""

    passes = 0

    def __iter__(self):
        self.passes += 1
        return super().__iter__()


def test_blocks_are_counted_in_one_pass_over_the_names():
    """Config.from_shapes looked through every name once per block (2000 blocks took 19 s): the passes over
    the names must not grow with the number of blocks."""
    config = Config(**{**asdict(TINY), "L": 200})
    shapes = CountingShapes(config.expected_shapes())
    assert Config.from_shapes(shapes) == config
    assert shapes.passes < 10
    for name in ("encoder.layers.01.norm1.weight", "encoder.layers.0", "encoder.layers.x.norm1.weight"):
        with pytest.raises(msf.WeightsError, match=f"unexpected tensors: {name}"):  # not block 0 or 1
            Config.from_shapes({**config.expected_shapes(), name: (4,)})


@contextlib.contextmanager
def fifo(tmp_path, name="fifo.safetensors"):
    """A FIFO. Should a reader wait on it for a writer, one comes (and goes) every 10 s, so that the test
    fails instead of hanging."""
    path = tmp_path / name
    os.mkfifo(path)
    done = threading.Event()

    def rescue():
        while not done.wait(10):
            with contextlib.suppress(OSError):  # ENXIO: no reader waits
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    threading.Thread(target=rescue, daemon=True).start()
    try:
        yield path
    finally:
        done.set()


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/null"), reason="needs POSIX")
def test_fifos_and_devices_are_refused_without_waiting(tmp_path):
    """Opening a FIFO waited for a writer, and a device such as /dev/zero was read without end (Python ran out
    of memory): both readers refuse what is not a regular file before reading (/dev/null: a device that ends)."""
    with fifo(tmp_path) as path:
        for device in (path, "/dev/null"):
            for read in (weights.read, msf.Refiner.load):
                with pytest.raises(msf.WeightsError, match=f"{device}'?: not a regular file"):
                    read(device)
    if HAS_CPP:  # in a child: msf::Model holds the GIL while it waits, so no rescue could run
        code = "import sys\nfrom msf import _core\nfor p in sys.argv[1:]:\n    try:\n" \
               "        _core.Model.from_file(p)\n    except Exception as e:\n        print(e)"
        with fifo(tmp_path, "cpp.safetensors") as path:
            result = subprocess.run([sys.executable, "-c", code, str(path), "/dev/zero"], capture_output=True,
                                    text=True, timeout=120)
        assert result.stdout.splitlines() == [f"safetensors: cannot open {path}: not a regular file",
                                              "safetensors: cannot open /dev/zero: not a regular file"], result


def test_unterminated_keyframe_strings_are_stripped_in_linear_time(tmp_path):
    """files' string pattern backtracked on an unterminated string of escaped quotes (40,000 took 20 s; these
    400,000 would take over half an hour): it is msf.weights.json_depth's now, which never backtracks."""
    path = tmp_path / "q.json"
    path.write_text('{"keyframes": ["' + '\\"' * 400_000 + "]}")
    code = "import sys, msf.files\ntry:\n    msf.files.read_keyframes(sys.argv[1])\nexcept msf.InputError as e:\n" \
           "    print(e)"
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert "cannot read keyframes: Unterminated string" in result.stdout, result
