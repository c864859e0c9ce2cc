"""The weight file: round trips, the safetensors package, and malformed files in both parsers."""
import json
import struct
from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import msf
from helpers import HAS_CPP, HAS_KERNELS, OFFICIAL, official_config, random_state_dict, requires_kernels
from msf import weights
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


def load_verdicts(data: bytes) -> dict:
    """name -> the loaded model's config, or 'refused' (a WeightsError): the readers and the model checks."""
    out = {}
    try:
        out["python"] = sorted(asdict(msf.Model.from_weights(weights.parse(data)).config).items())
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
