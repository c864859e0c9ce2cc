"""Reading and writing msf weight files: safetensors (docs/model.md §2), parsed here with bounds checks.

Weight files are untrusted: every length, offset and shape is checked before any byte is used, the
tensors must tile the data section exactly (no shared bytes, no stray ones), and nothing in a file is
executed. Any malformed input raises WeightsError.
"""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .errors import WeightsError

MAX_HEADER_BYTES = 100 << 20
_ITEMSIZE = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2}
_ENTRY_KEYS = {"dtype", "shape", "data_offsets"}


@dataclass
class Weights:
    """Tensors (float32, C-contiguous, by state-dict name) and the file's string metadata."""

    tensors: dict[str, np.ndarray]
    metadata: dict[str, str] = field(default_factory=dict)


def _no_duplicates(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise WeightsError(f"safetensors header has duplicate keys: {dup}")
    return dict(pairs)


def _reject_constant(name: str):
    raise WeightsError(f"safetensors header contains the non-JSON constant {name}")


def _is_index(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _decode(raw: memoryview, dtype: str, count: int) -> np.ndarray:
    if dtype == "BF16":
        halves = np.frombuffer(raw, dtype="<u2", count=count).astype(np.uint32)
        return (halves << 16).view(np.float32)
    return np.frombuffer(raw, dtype={"F32": "<f4", "F64": "<f8", "F16": "<f2"}[dtype], count=count
                         ).astype(np.float32)


def parse(data: bytes | bytearray | memoryview) -> Weights:
    """Parses a whole safetensors file held in memory. F16, BF16 and F64 tensors are converted to float32."""
    view = memoryview(data).cast("B")
    size = len(view)
    if size < 8:
        raise WeightsError(f"not a safetensors file: {size} bytes, shorter than the 8-byte header length")
    if bytes(view[:4]) == b"PK\x03\x04" or bytes(view[:2]) in (b"\x80\x02", b"\x80\x04", b"\x80\x05"):
        raise WeightsError("this is a PyTorch file (zip archive or pickle), not msf weights: convert it with "
                           "`msf convert CHECKPOINT -o model.safetensors` (tools/convert_weights.py)")
    (header_len,) = struct.unpack("<Q", view[:8])
    if header_len > MAX_HEADER_BYTES:
        raise WeightsError(f"safetensors header length {header_len} exceeds the {MAX_HEADER_BYTES}-byte cap "
                           f"(not a safetensors file, or a corrupted one)")
    if header_len > size - 8:
        raise WeightsError(f"truncated safetensors file: header length {header_len} but only "
                           f"{size - 8} bytes follow")
    try:
        text = bytes(view[8:8 + header_len]).decode("utf-8")
        header = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except UnicodeDecodeError as e:
        raise WeightsError(f"safetensors header is not valid UTF-8: {e}") from None
    except (json.JSONDecodeError, RecursionError) as e:
        raise WeightsError(f"safetensors header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise WeightsError("safetensors header must be a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise WeightsError("safetensors __metadata__ must be an object of string values")
    body = view[8 + header_len:]
    ranges = []
    tensors = {}
    for name, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
            raise WeightsError(f"tensor {name!r}: entry must be an object with exactly dtype, shape, "
                               f"data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in _ITEMSIZE:
            raise WeightsError(f"tensor {name!r}: unsupported dtype {dtype!r} (msf reads F32, F64, F16, BF16)")
        if not isinstance(shape, list) or not all(_is_index(s) for s in shape):
            raise WeightsError(f"tensor {name!r}: shape {shape!r} must be a list of non-negative integers")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_index(o) for o in offsets)
                or offsets[0] > offsets[1]):
            raise WeightsError(f"tensor {name!r}: data_offsets {offsets!r} must be [begin, end] with "
                               f"0 <= begin <= end")
        begin, end = offsets
        count = 1
        for s in shape:
            count *= s
        if end > len(body):
            raise WeightsError(f"tensor {name!r}: data_offsets end {end} is past the data section "
                               f"({len(body)} bytes); the file is truncated or corrupted")
        if end - begin != count * _ITEMSIZE[dtype]:
            raise WeightsError(f"tensor {name!r}: {end - begin} data bytes do not match shape {shape} "
                               f"of {dtype} ({count * _ITEMSIZE[dtype]} bytes)")
        if begin < end:
            ranges.append((begin, end, name))
        tensors[name] = _decode(body[begin:end], dtype, count).reshape(shape)
    # the non-empty ranges must tile the data section: shared bytes could alias tensors, and bytes that
    # belong to no tensor mean a corrupted or tampered file
    ranges.sort()
    covered, previous = 0, None
    for begin, end, name in ranges:
        if begin < covered:
            raise WeightsError(f"tensors {previous!r} and {name!r} overlap in the data section")
        if begin > covered:
            raise WeightsError(f"tensor {name!r}: data starts at {begin} but the previous tensor ends at {covered}: "
                               f"bytes between tensors belong to none")
        covered, previous = end, name
    if covered != len(body):
        raise WeightsError(f"{len(body) - covered} bytes after the last tensor belong to none (truncated header "
                           f"or corrupted file)")
    return Weights(tensors=tensors, metadata=dict(metadata))


def read(path: str | os.PathLike) -> Weights:
    """Reads a safetensors weight file. Raises WeightsError for unreadable or malformed files."""
    return read_with_bytes(path)[1]


def read_with_bytes(path: str | os.PathLike) -> tuple[bytes, Weights]:
    """As read, also giving the file's bytes (what a pickled Refiner carries)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise WeightsError(f"cannot read weights file {os.fspath(path)!r}: {e.strerror or e}") from None
    try:
        return data, parse(data)
    except WeightsError as e:
        raise WeightsError(f"{os.fspath(path)}: {e}") from None


def to_bytes(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """Serialises tensors as F32 safetensors (8-byte aligned, names in the given order)."""
    header: dict = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("metadata keys and values must be strings")
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name, array in tensors.items():
        blob = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(np.shape(array)),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def write(path: str | os.PathLike, tensors: Mapping[str, np.ndarray],
          metadata: Mapping[str, str] | None = None) -> None:
    """Writes tensors (converted to float32) and string metadata to a safetensors file."""
    data = to_bytes(tensors, metadata)
    with open(path, "wb") as f:
        f.write(data)
