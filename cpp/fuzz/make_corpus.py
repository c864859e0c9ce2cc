"""Writes the seed corpus of the libFuzzer harnesses (cpp/fuzz, issue 7) into a directory:

    python cpp/fuzz/make_corpus.py OUT_DIR

- small valid msf model files with random weights, one per configuration below (r_t = 1, d_c < C,
  d_t < T, Q = 1, two blocks, unused value_reduce tensors kept), written by msf's own writer
  (msf.weights.to_bytes, F32), plus F64 and F16 models written by the `safetensors` package when it is
  importable and a BF16/mixed-dtype model written here;
- a few small safetensors files that are valid but not models (every dtype, empty and scalar tensors,
  metadata only, no tensors at all, escapes in names and metadata).

Every file is small (well under the fuzzers' -max_len of 64 KiB) and is checked with msf's Python reader
before it is written. Needs NumPy; msf is imported from the repository's src/. Deterministic.
"""
from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
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
    shapes = dict(config.expected_shapes())
    if keep_unused:  # official checkpoints carry value_reduce even where d == N; msf accepts and ignores it
        for i in range(config.L):
            for branch, n, d in (("synth_token", config.T, config.d_t), ("synth_channel", config.C, config.d_c)):
                if d == n:
                    s = f"encoder.layers.{i}.synth_att.{branch}.value_reduce."
                    shapes.update({s + "weight": (d, n), s + "bias": (d,)})
    tensors = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight") or name.endswith("norm1.weight") or name.endswith("norm2.weight"):
            tensors[name] = 1 + 0.1 * rng.standard_normal(shape)
        elif len(shape) == 1:
            tensors[name] = 0.1 * rng.standard_normal(shape)
        else:
            tensors[name] = rng.standard_normal(shape) / np.sqrt(shape[1])
    return {k: v.astype(np.float32) for k, v in tensors.items()}


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


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {**models(np.random.default_rng(7)), **small_files()}
    for name, data in files.items():
        with np.errstate(over="ignore"):  # -1e300 in F64 seeds narrows to -inf on purpose
            weights = msf.weights.parse(data)  # every seed is a valid file ...
        if name.startswith("model_"):
            Model.from_tensors(weights.tensors, weights.metadata)  # ... and every model_ seed loads
        if len(data) > MAX_BYTES:
            sys.exit(f"{name}: {len(data)} bytes, over the fuzzers' -max_len")
        (out_dir / name).write_bytes(data)
    print(f"wrote {len(files)} seed files to {out_dir}")


if __name__ == "__main__":
    main()
