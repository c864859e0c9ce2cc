"""The weight file: round trips, the safetensors package, and malformed files in both parsers."""
import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import msf
from conftest import HAS_CPP, OFFICIAL, official_config, random_state_dict
from msf import weights

if HAS_CPP:
    from msf import _core


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
    if HAS_CPP:
        yield "cpp", lambda data: _core.parse_safetensors(bytes(data))[0]


def test_round_trip_and_metadata():
    data = small_file({"format": "msf", "note": "ünïcode ✓"})
    parsed = weights.parse(data)
    assert parsed.metadata == {"format": "msf", "note": "ünïcode ✓"}
    np.testing.assert_array_equal(parsed.tensors["a"], np.arange(6).reshape(2, 3))
    assert parsed.tensors["empty"].shape == (0, 4)
    if HAS_CPP:
        tensors, metadata = _core.parse_safetensors(data)
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
    "duplicate key": struct.pack("<Q", 2 * 61 + 1) + (b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                                      b'"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}') + bytes(4),
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


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_files_raise_only_weights_error_and_parsers_agree(data):
    base = bytearray(small_file())
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        kind = data.draw(st.sampled_from(["flip", "truncate", "insert"]), label="kind")
        pos = data.draw(st.integers(0, max(0, len(base) - 1)), label="pos")
        if kind == "flip" and base:
            base[pos] ^= data.draw(st.integers(1, 255), label="xor")
        elif kind == "truncate":
            del base[pos:]
        else:
            base[pos:pos] = data.draw(st.binary(min_size=1, max_size=8), label="bytes")
    outcomes = {}
    for name, parse in parsers():
        try:
            outcomes[name] = sorted((k, v.shape, v.tobytes()) for k, v in parse(bytes(base)).items())
        except msf.WeightsError:
            outcomes[name] = "refused"
    assert len({repr(v) for v in outcomes.values()}) == 1, f"parsers disagree on {bytes(base)!r}: {outcomes}"


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
