"""Writes the seed corpus of the libFuzzer harnesses (cpp/fuzz, issue 7) into a directory:

    python cpp/fuzz/make_corpus.py OUT_DIR

- small valid msf model files with random weights, one per configuration below (r_t = 1, d_c < C,
  d_t < T, Q = 1, two blocks, unused value_reduce tensors kept), written by msf's own writer
  (msf.weights.to_bytes, F32), plus F64 and F16 models written by the `safetensors` package when it is
  importable and a BF16/mixed-dtype model written here;
- a few small safetensors files that are valid but not models (every dtype, empty and scalar tensors,
  metadata only, no tensors at all, escapes in names and metadata);
- edge_* files on both sides of each limit the two readers share (issue 11, item 8; msf.weights'
  docstring): the header length cap, JSON nesting depth (64 arrays/objects), integers of 4300/4301 digits,
  shapes of 64/65 dims and nonzero-dimension products at 2^61 - 1, lone surrogate escapes, NaN and
  Infinity and repeated keys in the pose/config JSON, null joints, and pose dims whose product with the
  joint count wraps around 2^64. Each is named edge_<accept|refuse>_<what>: the verdict both readers
  (and, for models, both loaders) must give.

Every file is small (well under the fuzzers' -max_len of 64 KiB) and is checked with msf's Python reader
(and the C++ one, when msf._core and msf._kernels are built) before it is written: the valid seeds parse and
the model_ seeds load; each edge_ seed gets its verdict. Needs NumPy; msf is imported from the repository's src/.
Deterministic, except the files the `safetensors` package writes (its JSON header order varies from run
to run; the tensors and metadata do not).
"""
from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
import msf.schema  # noqa: E402
import msf.weights  # noqa: E402
from msf.config import Config  # noqa: E402
from msf.model import Model  # noqa: E402

MAX_BYTES = 60000

# name: (config, keep the unused value_reduce tensors of branches with d == N)
CONFIGS = {
    "rt1": (Config(K=2, Q=2, P=6, C=8, L=1, ffn_hidden=16, d_t=5, d_c=8, se_t=2, se_c=2, reweight_hidden=4), False),
    "rt1_unused_vr": (Config(K=2, Q=2, P=6, C=8, L=1, ffn_hidden=16, d_t=5, d_c=8, se_t=2, se_c=2,
                             reweight_hidden=4), True),
    "dc_lt_c": (Config(K=2, Q=3, P=9, C=12, L=1, ffn_hidden=24, d_t=7, d_c=4, se_t=2, se_c=3, reweight_hidden=3),
                False),
    "reduced_L2": (Config(K=3, Q=4, P=6, C=16, L=2, ffn_hidden=32, d_t=4, d_c=8, se_t=3, se_c=4, reweight_hidden=5),
                   False),
    "q1": (Config(K=4, Q=1, P=4, C=4, L=1, ffn_hidden=8, d_t=2, d_c=4, se_t=1, se_c=1, reweight_hidden=2), False),
}


def random_tensors(config: Config, keep_unused: bool, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """float32 msf.schema random weights; keep_unused: with the value_reduce official checkpoints carry where
    d == N (msf accepts and ignores it)."""
    return {k: v.astype(np.float32) for k, v in msf.schema.random_state_dict(config, rng, keep_unused).items()}


def metadata(config: Config, source: str, joints: int | None = None) -> dict[str, str]:
    meta = {"format": "msf", "format_version": "1", "config": config.to_json(), "source": source}
    if joints:
        meta["pose"] = json.dumps({"joints": [f"j{i}" for i in range(joints)], "dims": config.P // joints})
    return meta


def raw_safetensors(entries: list[tuple[str, str, tuple[int, ...], bytes]], meta: dict[str, str] | None) -> bytes:
    """A safetensors file of raw little-endian tensor bytes in the given order, tiling the data section."""
    header: dict = {"__metadata__": meta} if meta else {}
    offset, blobs = 0, []
    for name, dtype, shape, blob in entries:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def bf16(array: np.ndarray) -> bytes:
    bits = np.ascontiguousarray(array, dtype="<f4").view("<u4")
    return ((bits + 0x8000) >> 16).astype("<u2").tobytes()  # round half up; fine for seeds


def models(rng: np.random.Generator) -> dict[str, bytes]:
    out = {}
    kept = {}
    for name, (config, keep_unused) in CONFIGS.items():
        tensors = random_tensors(config, keep_unused, rng)
        kept[name] = tensors
        joints = 3 if config.P % 3 == 0 else None
        out[f"model_{name}.safetensors"] = msf.weights.to_bytes(tensors, metadata(config, "make_corpus", joints))

    # Mixed dtypes in one model: BF16 matrices, F32 vectors (names in reverse order in the header).
    config = CONFIGS["q1"][0]
    tensors = kept["q1"]
    entries = [(n, "BF16", a.shape, bf16(a)) if a.ndim == 2 else (n, "F32", a.shape, a.astype("<f4").tobytes())
               for n, a in reversed(list(tensors.items()))]
    out["model_q1_bf16_mixed.safetensors"] = raw_safetensors(entries, metadata(config, "make_corpus bf16"))

    try:
        from safetensors.numpy import save
    except ImportError:
        print("safetensors not importable: no F64/F16 models written by it", file=sys.stderr)
    else:
        meta = metadata(CONFIGS["rt1"][0], "make_corpus safetensors F64")
        out["model_rt1_f64_st.safetensors"] = save({k: v.astype(np.float64) for k, v in kept["rt1"].items()}, meta)
        meta = metadata(CONFIGS["dc_lt_c"][0], "make_corpus safetensors F16")
        out["model_dc_lt_c_f16_st.safetensors"] = save({k: v.astype(np.float16) for k, v in kept["dc_lt_c"].items()},
                                                       meta)
        out["st_package_mixed.safetensors"] = save(
            {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([0.1, -1e300], dtype=np.float64),
             "c": np.array([1, 65504, 6e-8], dtype=np.float16), "d": np.zeros((0, 3), dtype=np.float32)},
            {"format": "pt"})
    return out


def small_files() -> dict[str, bytes]:
    f32 = np.array([1.5, -2.0, 0.0, 3.25, -0.0, 1e-40], dtype="<f4").tobytes()
    f64 = np.array([0.1, -1e300], dtype="<f8").tobytes()
    f16 = struct.pack("<4H", 0x3C00, 0x0001, 0x7C00, 0xFE01)
    b16 = struct.pack("<3H", 0x3F80, 0xC040, 0x0001)
    return {
        "st_all_dtypes.safetensors": raw_safetensors(
            [("w.f32", "F32", (2, 3), f32), ("w.f64", "F64", (2,), f64), ("w.f16", "F16", (4,), f16),
             ("w.bf16", "BF16", (1, 3), b16), ("scalar", "F32", (), struct.pack("<f", 7.0)),
             ("empty", "F32", (0, 5), b""), ("\u00fcnicode", "BF16", (0,), b"")],
            {"format": "pt", "esc": "a\"b\\c/d\b\f\n\r\t\u00e9\U0001F600"}),
        "st_empty_header.safetensors": struct.pack("<Q", 2) + b"{}",
        "st_metadata_only.safetensors": raw_safetensors([], {"format": "msf", "format_version": "1"}),
        "st_one_f32.safetensors": raw_safetensors([("t", "F32", (2,), struct.pack("<2f", 1.0, 2.0))], None),
    }


def tensor_member(name_text: str, shape_text: str, begin: int, end: int) -> str:
    """One F32 header member as raw JSON text (name_text quoted by the caller, so it can hold any escape)."""
    return f'{name_text}:{{"dtype":"F32","shape":{shape_text},"data_offsets":[{begin},{end}]}}'


def raw_header_file(members: list[str], body: bytes = b"", metadata_text: str | None = None,
                    header_len: int | None = None) -> bytes:
    """A safetensors file from raw JSON members (and raw __metadata__ text); header_len overrides the length."""
    if metadata_text is not None:
        members = [f'"__metadata__":{metadata_text}', *members]
    text = ("{" + ",".join(members) + "}").encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text) if header_len is None else header_len) + text + body


def edge_files(rng: np.random.Generator) -> dict[str, bytes]:
    """edge_<accept|refuse>_<what>: files on both sides of each limit the readers share."""
    one = struct.pack("<f", 1.0)
    big = "1" + "0" * msf.weights.MAX_INTEGER_DIGITS  # one digit over the limit
    cap = msf.weights.MAX_HEADER_BYTES
    most = msf.weights.MAX_SHAPE_ELEMENTS
    dims = msf.weights.MAX_SHAPE_DIMS
    depth = msf.weights.MAX_JSON_DEPTH
    out = {
        "edge_refuse_header_len_at_cap.safetensors": raw_header_file([], header_len=cap),  # but the file is short
        "edge_refuse_header_len_over_cap.safetensors": raw_header_file([], header_len=cap + 1),
        "edge_accept_64_dims.safetensors": raw_header_file([tensor_member('"t"', json.dumps([1] * dims), 0, 4)], one),
        "edge_refuse_65_dims.safetensors": raw_header_file([tensor_member('"t"', json.dumps([1] * (dims + 1)), 0, 4)],
                                                           one),
        "edge_accept_empty_at_element_cap.safetensors": raw_header_file([tensor_member('"t"', f"[0,{most}]", 0, 0)]),
        "edge_refuse_empty_over_element_cap.safetensors": raw_header_file(
            [tensor_member('"t"', f"[0,{most + 1}]", 0, 0)]),
        "edge_refuse_empty_dims_overflow_int64.safetensors": raw_header_file(
            [tensor_member('"t"', f"[{2**62},0,{2**62}]", 0, 0)]),
        "edge_refuse_huge_int_shape.safetensors": raw_header_file([tensor_member('"t"', f"[{big}]", 0, 4)], one),
        "edge_refuse_negative_zero_shape.safetensors": raw_header_file([tensor_member('"t"', "[-0]", 0, 0)]),
        "edge_refuse_lone_surrogate_name.safetensors": raw_header_file([tensor_member('"t\\ud800"', "[1]", 0, 4)],
                                                                       one),
        "edge_refuse_lone_low_surrogate_name.safetensors": raw_header_file(
            [tensor_member('"\\udc00t"', "[1]", 0, 4)], one),
        "edge_accept_surrogate_pair_name.safetensors": raw_header_file(
            [tensor_member('"\\ud83d\\ude00"', "[1]", 0, 4)], one),
        "edge_refuse_lone_surrogate_metadata_key.safetensors": raw_header_file([], metadata_text='{"k\\ud800":"v"}'),
        "edge_refuse_lone_surrogate_metadata_value.safetensors": raw_header_file(
            [], metadata_text='{"k":"\\udbff\\u0041"}'),
        "edge_refuse_header_deep_25k.safetensors": raw_header_file(['"x":' + "[" * 25000 + "]" * 25000]),
        "edge_refuse_header_deep_unclosed_50k.safetensors": raw_header_file(['"x":' + "[" * 50000]),
        "edge_refuse_header_nan.safetensors": raw_header_file(['"x":NaN']),
    }

    # The q1 model with its pose (P = 4: 2 joints x 2 dims) or config JSON changed.
    config = CONFIGS["q1"][0]
    tensors = random_tensors(config, False, rng)
    pose = '{"skeleton":"generic","joints":["a","b"],"dims":2'

    def model(what: str, pose_text: str | None = None, config_text: str | None = None) -> None:
        meta = metadata(config, "make_corpus edge")
        meta["pose"] = pose + "}" if pose_text is None else pose_text
        if config_text is not None:
            meta["config"] = config_text
        out[f"edge_{what}.safetensors"] = msf.weights.to_bytes(tensors, meta)

    model("accept_model_pose")
    model("accept_pose_int_4300_digits", pose + ',"x":' + "9" * 4300 + "}")
    model("refuse_pose_int_4301_digits", pose + ',"x":' + big + "}")
    model("refuse_config_int_4301_digits", config_text=config.to_json()[:-1] + ',"x":' + big + "}")
    model("refuse_pose_nan", pose + ',"x":NaN}')
    model("refuse_pose_infinity", pose + ',"x":[-Infinity]}')
    model("accept_pose_deep_64", pose + ',"x":' + "[" * (depth - 1) + "1" + "]" * (depth - 1) + "}")
    model("refuse_pose_deep_65", pose + ',"x":' + "[" * depth + "]" * depth + "}")
    model("refuse_pose_deep_20k", pose + ',"x":' + "[" * 20000 + "]" * 20000 + "}")
    model("refuse_config_deep_unclosed_5k", config_text='{"x":' * 5000)
    model("refuse_pose_lone_surrogate", pose + ',"x":"\\ud800"}')
    model("refuse_pose_lone_surrogate_joint", pose.replace('"a"', '"\\udfff"') + "}")
    model("accept_pose_surrogate_pair", pose + ',"x":"\\ud83d\\ude00"}')
    model("refuse_pose_duplicate_key", pose + ',"dims":2}')
    model("refuse_pose_nested_duplicate_key", pose + ',"x":{"a":1,"\\u0061":2}}')
    model("refuse_pose_joints_null", '{"joints":null}')
    # 20 joints x 922337203685477581 dims = 4 + 2^64: wrapped to P = 4 in C++ (signed overflow) before
    model("refuse_pose_dims_overflow", json.dumps({"joints": [f"j{i}" for i in range(20)],
                                                   "dims": (2**64 + config.P) // 20}))
    return out


def check_edge(name: str, data: bytes) -> None:
    """The seed's verdict (from its name) in msf's Python reader and loader, and in the C++ ones if built."""
    expected = name.split("_")[1]
    loaders = [("python", lambda d: Model.from_weights(msf.weights.parse(d)) if d[8:].find(b'"config"') >= 0
                else msf.weights.parse(d))]
    try:
        from msf import _core, _kernels
    except ImportError:
        pass
    else:
        loaders.append(("cpp", lambda d: _core.Model.from_buffer(d) if d[8:].find(b'"config"') >= 0
                        else _kernels.parse_safetensors(d)))
    for reader, load in loaders:
        try:
            load(data)
            got = "accept"
        except msf.WeightsError:
            got = "refuse"
        if got != expected:
            sys.exit(f"{name}: the {reader} reader gives {got}, the name says {expected}")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {**models(np.random.default_rng(7)), **small_files()}
    edges = edge_files(np.random.default_rng(11))
    for name, data in edges.items():
        check_edge(name, data)
        if len(data) > MAX_BYTES:
            sys.exit(f"{name}: {len(data)} bytes, over the fuzzers' -max_len")
        (out_dir / name).write_bytes(data)
    for name, data in files.items():
        with np.errstate(over="ignore"):  # -1e300 in F64 seeds narrows to -inf on purpose
            weights = msf.weights.parse(data)  # every seed is a valid file ...
        if name.startswith("model_"):
            Model.from_tensors(weights.tensors, weights.metadata)  # ... and every model_ seed loads
        if len(data) > MAX_BYTES:
            sys.exit(f"{name}: {len(data)} bytes, over the fuzzers' -max_len")
        (out_dir / name).write_bytes(data)
    print(f"wrote {len(files) + len(edges)} seed files to {out_dir}")


if __name__ == "__main__":
    main()
