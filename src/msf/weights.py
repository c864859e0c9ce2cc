"""Reading and writing msf weight files: safetensors (docs/model.md §2), parsed here with bounds checks.

Weight files are untrusted: every length, offset and shape is checked before any byte is used, the
tensors must tile the data section exactly (no shared bytes, no stray ones), and nothing in a file is
executed. Any malformed input raises WeightsError.

This reader and the C++ one (cpp/src/safetensors.cpp) give the same verdict on every file, with the same
limits (the C++ ones are exposed as msf._kernels.MAX_*; tests/test_weights.py checks they are equal):
the header is at most MAX_HEADER_BYTES; JSON (the header, and the `config`, `pose` and `prediction`
metadata read by msf.model and msf.predict through `loads`) is strict RFC 8259 without NaN/Infinity,
lone surrogate escapes or repeated keys, nests at most MAX_JSON_DEPTH arrays and objects, and has
integers of at most MAX_INTEGER_DIGITS digits; a shape has at most MAX_SHAPE_DIMS entries whose nonzero
ones multiply to at most MAX_SHAPE_ELEMENTS. Only regular files are read (open_regular).
"""
from __future__ import annotations

import errno
import json
import os
import re
import reprlib
import stat
import struct
from dataclasses import dataclass, field
from typing import BinaryIO, Mapping

import numpy as np

from ._formats import bf16_to_f32, is_index as _is_index, sniff
from .errors import WeightsError

MAX_HEADER_BYTES = 100_000_000  # the header length field's cap, in bytes (C++: kMaxHeaderBytes)
MAX_JSON_DEPTH = 64  # nested arrays and objects (C++: kMaxJsonDepth)
MAX_INTEGER_DIGITS = 4300  # digits of a JSON integer: Python's int-from-string limit (C++: kMaxIntegerDigits)
MAX_SHAPE_DIMS = 64  # NumPy's limit (C++: kMaxShapeDims)
MAX_SHAPE_ELEMENTS = (2**63 - 1) // 4  # nonzero dims' product: as float32 at most 2**63 - 1 bytes (NumPy's limit)
_ITEMSIZE = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2}
_ENTRY_KEYS = {"dtype", "shape", "data_offsets"}


@dataclass
class Weights:
    """Tensors (float32, C-contiguous, by state-dict name) and the file's string metadata."""

    tensors: dict[str, np.ndarray]
    metadata: dict[str, str] = field(default_factory=dict)


class _Refused(Exception):
    """Raised by the JSON hooks; loads() turns it into a WeightsError naming the document."""


class _NegativeZero(int):
    """The JSON integer -0 in the header: 0, but refused where a non-negative integer is needed (as in C++)."""


def _no_duplicates(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen, dup = set(), set()
        for k, _ in pairs:  # one pass: an object can have millions of keys
            (dup if k in seen else seen).add(k)
        raise _Refused(f"has duplicate keys: {_short(sorted(dup))}")
    return out


def _reject_constant(name: str):
    raise _Refused(f"contains the non-JSON constant {name}")


def _parse_int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > MAX_INTEGER_DIGITS:
        raise _Refused(f"has an integer of {digits} digits, over the limit of {MAX_INTEGER_DIGITS}")
    return int(text)


def _parse_header_int(text: str) -> int:
    return _NegativeZero(0) if text == "-0" else _parse_int(text)


def _make_short_repr() -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxdict, r.maxstring, r.maxother, r.maxlong = 2, 8, 8, 60, 60, 40
    return r


_short = _make_short_repr().repr  # values from the file in messages: bounded whatever they hold


# A JSON string, up to its closing quote or the end of the text: it never fails to match, so stripping
# strings takes one pass however the text is malformed.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
# where json.loads can make a surrogate: a \uD800..\uDFFF escape (or a backslash and such text after it)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def json_depth(text: str, limit: int = MAX_JSON_DEPTH) -> int:
    """How many arrays and objects nest in JSON text (brackets inside strings not counted), found without
    recursion, in linear time and bounded memory, so that deep text is refused before json.loads recurses
    into it. Exact up to `limit`; past it, some depth over `limit` (the scan stops early)."""
    brackets = _JSON_STRING.sub("", text).encode("utf-8", "surrogatepass").translate(None, _NOT_BRACKETS)
    depth, chunk = 0, 1 << 20
    for start in range(0, len(brackets), chunk):
        code = np.frombuffer(brackets, dtype=np.uint8, count=min(chunk, len(brackets) - start), offset=start)
        level = np.cumsum(np.where((code == ord("[")) | (code == ord("{")), 1, -1)) + depth
        if level.max() > limit:  # no need to look further
            return int(level.max())
        depth = int(level[-1])
    return depth


def _check_strings(value, what: str) -> None:
    """Refuses strings (keys too) holding a lone surrogate, which JSON's \\uD800 escapes can produce
    but UTF-8 (and so the C++ reader) cannot represent."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise WeightsError(f"{what} has a lone surrogate (U+D800..U+DFFF, e.g. from an unpaired \\uD800 "
                                   f"escape), which UTF-8 cannot encode, in the string {_short(v)}") from None


def loads(text: str, what: str, *, _header: bool = False):
    """Parses untrusted JSON text as both msf readers do (see the module docstring); `what` names it in
    the WeightsError raised for anything refused (e.g. "metadata 'pose'")."""
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise WeightsError(f"{what} nests arrays and objects {depth} deep, over the limit of {MAX_JSON_DEPTH}")
    _check_strings(text, what)
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant,
                           parse_int=_parse_header_int if _header else _parse_int)
    except _Refused as e:
        raise WeightsError(f"{what} {e}") from None
    except (ValueError, RecursionError) as e:  # json.JSONDecodeError is a ValueError
        raise WeightsError(f"{what} is not valid JSON: {e}") from None
    if _SURROGATE_ESCAPE.search(text):  # else no string can hold one: no need to walk the document
        _check_strings(value, what)
    return value


def _decode(raw: memoryview, dtype: str, count: int) -> np.ndarray:
    if dtype == "BF16":
        return bf16_to_f32(raw, "<", count)
    with np.errstate(over="ignore"):  # F64 beyond float32 becomes inf, as in C++; msf.model refuses it
        return np.frombuffer(raw, dtype={"F32": "<f4", "F64": "<f8", "F16": "<f2"}[dtype], count=count
                             ).astype(np.float32)


def parse(data: bytes | bytearray | memoryview) -> Weights:
    """Parses a whole safetensors file held in memory. F16, BF16 and F64 tensors are converted to float32."""
    view = memoryview(data).cast("B")
    try:
        return _parse(view)
    except WeightsError:
        # Only a file that fails as safetensors is called a PyTorch file: a valid header of 640 bytes
        # starts with the bytes 80 02 too.
        if sniff(bytes(view[:512])) in ("zip", "legacy", "pickle"):
            raise WeightsError("this is a PyTorch file (zip archive or pickle), not msf weights: convert it "
                               "with `msf convert CHECKPOINT -o model.safetensors` (tools/convert_weights.py)"
                               ) from None
        raise


def _parse(view: memoryview) -> Weights:
    size = len(view)
    if size < 8:
        raise WeightsError(f"not a safetensors file: {size} bytes, shorter than the 8-byte header length")
    (header_len,) = struct.unpack("<Q", view[:8])
    if header_len > MAX_HEADER_BYTES:
        raise WeightsError(f"safetensors header length {header_len} exceeds the {MAX_HEADER_BYTES}-byte cap "
                           f"(not a safetensors file, or a corrupted one)")
    if header_len > size - 8:
        raise WeightsError(f"truncated safetensors file: header length {header_len} but only "
                           f"{size - 8} bytes follow")
    try:
        text = bytes(view[8:8 + header_len]).decode("utf-8")
    except UnicodeDecodeError as e:
        raise WeightsError(f"safetensors header is not valid UTF-8: {e}") from None
    header = loads(text, "safetensors header", _header=True)
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
        if not isinstance(dtype, str) or dtype not in _ITEMSIZE:
            raise WeightsError(f"tensor {name!r}: unsupported dtype {_short(dtype)} (msf reads F32, F64, F16, BF16)")
        if not isinstance(shape, list) or not all(_is_index(s) for s in shape):
            raise WeightsError(f"tensor {name!r}: shape {_short(shape)} must be a list of non-negative integers")
        if len(shape) > MAX_SHAPE_DIMS:
            raise WeightsError(f"tensor {name!r}: shape has {len(shape)} dimensions, more than {MAX_SHAPE_DIMS}")
        nonzero = 1
        for s in shape:
            nonzero *= s or 1
            if nonzero > MAX_SHAPE_ELEMENTS:
                raise WeightsError(f"tensor {name!r}: shape has too many elements (its nonzero dimensions "
                                   f"multiply to over 2^61 - 1): {_short(shape)}")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_index(o) for o in offsets)
                or offsets[0] > offsets[1]):
            raise WeightsError(f"tensor {name!r}: data_offsets {_short(offsets)} must be [begin, end] with "
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


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """path (symlinks followed) opened for binary reading if it is a regular file, else OSError "not a
    regular file" without waiting or reading: opening a FIFO waits for a writer, a device such as /dev/zero
    never ends, and opening some devices acts. Checked before opening, and again on what was opened (without
    blocking, should a FIFO have taken the path's place), as the C++ reader does (read_safetensors_file)."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_with_bytes(path: str | os.PathLike) -> tuple[bytes, Weights]:
    """As read, also giving the file's bytes (what a pickled Refiner carries)."""
    try:
        with open_regular(path) as f:
            data = f.read(os.fstat(f.fileno()).st_size)  # the size C++ reads too, whatever is appended meanwhile
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
