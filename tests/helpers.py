"""Plain helpers shared by the test modules: paths, the official configurations, the C++ extension's
presence and torch.save archives written by hand. Fixtures live in conftest.py, tolerances in tolerances.py;
test modules import from these, never from each other."""
import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

import msf
from msf import schema
from msf.config import OFFICIAL_CONFIGS, Config, official_config  # noqa: F401 (official_config: for the tests)

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"
CONVERT_WEIGHTS = TOOLS / "convert_weights.py"  # the documented converter (README), which re-saves legacy files
MOTION_VAL = ROOT.parent / "shared" / "data" / "motion_val.npz"  # real motion, where the checkout has it

HAS_CPP = "cpp" in msf.backends()
requires_cpp = pytest.mark.skipif(not HAS_CPP, reason="msf._core (C++ extension) is not built")


def _has_kernels() -> bool:
    """msf._kernels: single kernels and the C++ safetensors reader, which a wheel may leave out
    (MSF_KERNEL_BINDINGS=OFF)."""
    try:
        from msf import _kernels  # noqa: F401
    except ImportError:
        return False
    return True


HAS_KERNELS = HAS_CPP and _has_kernels()
requires_kernels = pytest.mark.skipif(not HAS_KERNELS, reason="msf._kernels (test-only C++ bindings) is not built")

# (K, Q, P, C, L) of the official configurations and the config their constructor builds: one source,
# msf.config (docs/model.md §1)
OFFICIAL = OFFICIAL_CONFIGS

def random_state_dict(config: Config, seed: int = 0, with_unused_value_reduce: bool = True) -> dict:
    """Random float64 tensors of sensible scale for every official state-dict key of `config` (msf.schema)."""
    return schema.random_state_dict(config, seed, with_unused=with_unused_value_reduce)


# A random pw3d-architecture model (K=10, 14 LSP joints x 3, mm, root-relative; conftest's lsp14_model_path)
# and keyframes for it with one missing joint: the inputs of the many-file and Ray tests.
LSP14_POSE = {"skeleton": "lsp14", "joints": [f"j{i}" for i in range(14)], "dims": 3, "units": "mm",
              "root_relative": True, "root_joints": [2, 3],
              "parents": [1, 2, 12, 12, 3, 4, 7, 8, 12, 12, 9, 10, -1, 12]}


def lsp14_keyframes(n: int, seed: int) -> np.ndarray:
    """(keyframe_count(n, 10), 14, 3) mm around 900, joint 4 of keyframe 1 missing (NaN)."""
    kf = np.random.default_rng(seed).standard_normal((len(msf.keyframe_indices(n, 10)), 14, 3)) * 200 + 900
    kf[1, 4] = np.nan
    return kf


# --- torch.save archives written by hand: no torch needed ----------------------------------------------

def member(name: str) -> zipfile.ZipInfo:
    """A zip member with a fixed timestamp, so that the same members give the same bytes (writestr(name)
    stamps the current time, and a test comparing two archives built a second apart would flake)."""
    return zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))


def op_str(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def op_int(i: int) -> bytes:
    if -2**31 <= i < 2**31:
        return b"J" + struct.pack("<i", i)
    b = i.to_bytes((i.bit_length() + 8) // 8, "little", signed=True)
    return (b"\x8a" + bytes([len(b)]) if len(b) < 256 else b"\x8b" + struct.pack("<i", len(b))) + b  # LONG1/4


def op_tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def op_global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def op_tensor(key="0", numel=6, offset=0, size=(2, 3), stride=(3, 1), storage="FloatStorage", pid=None,
              location="cpu", metadata=b"") -> bytes:
    """torch._utils._rebuild_tensor_v2(('storage', torch.<storage>, key, location, numel), offset, size, stride,
    False, OrderedDict()[, metadata]) as torch.save pickles it."""
    pid = pid or op_tuple(op_str("storage"), op_global("torch", storage), op_str(key), op_str(location),
                          op_int(numel))
    offset = op_int(offset) if isinstance(offset, int) else offset  # or opcodes
    return op_global("torch._utils", "_rebuild_tensor_v2") + op_tuple(
        pid + b"Q", offset, op_tuple(*map(op_int, size)), op_tuple(*map(op_int, stride)), b"\x89",
        op_global("collections", "OrderedDict") + b")R", metadata) + b"R"


def op_dict(entries: dict) -> bytes:
    return b"}(" + b"".join(op_str(k) + v for k, v in entries.items()) + b"u"


def archive(pickled: bytes, storages: dict | None = None, prefix="archive", compression=zipfile.ZIP_STORED,
            records: dict | None = None) -> bytes:
    members = {"data.pkl": pickled, "byteorder": b"little", "version": b"3\n",
               **{f"data/{k}": v for k, v in (storages or {}).items()}, **(records or {})}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for rel, payload in members.items():
            z.writestr(member(f"{prefix}/{rel}"), payload, compress_type=compression)
    return out.getvalue()


def torchless_checkpoint(state: dict, **extra) -> bytes:
    """A torch.save-format trainer checkpoint of NumPy float32/float64 arrays, written without torch."""
    storages, entries = {}, {}
    for i, (name, array) in enumerate(state.items()):
        array = np.ascontiguousarray(array)
        kind = {np.dtype("float32"): "FloatStorage", np.dtype("float64"): "DoubleStorage"}[array.dtype]
        storages[str(i)] = array.astype(array.dtype.newbyteorder("<")).tobytes()
        strides = tuple(s // array.itemsize for s in array.strides)
        entries[name] = op_tensor(str(i), array.size, 0, array.shape, strides, kind)
    return archive(b"\x80\x02" + op_dict({**extra, "state_dict": op_dict(entries)}) + b".", storages)
