"""A restricted reader of PyTorch checkpoints (`torch.save` zip archives) that needs neither torch nor trust.

A torch.save file is a zip archive of uncompressed members under one top-level folder:
`<prefix>/data.pkl` (a pickle of the saved object), `<prefix>/data/<key>` (the raw bytes of each
storage), `<prefix>/byteorder` ("little" or "big"; absent means little) and bookkeeping records.
Tensors appear in the pickle as calls of torch._utils._rebuild_tensor_v2 on persistent storage ids
('storage', storage type, key, location, numel).

Nothing from the file is imported or executed. The pickle is read by an Unpickler whose find_class
returns this module's inert stand-ins for an explicit allowlist of globals (the ones a state dict, an
optimizer state and simple trainer metadata need) and refuses every other global before it could be
called. Every object the pickle can create refuses BUILD (it cannot set attributes on a storage
record after its size was checked, nor on the shared stand-ins) except the two types torch.save builds
(OrderedDict, whose state is dropped, and numpy.dtype). Before unpickling, a pre-scan walks the opcodes
and caps lengths, memo indices and the nesting of containers (MAX_DEPTH), since hashing a deeply nested
tuple recurses on the C stack. Storages are read into NumPy only for the tensors of the state dict, after
checking that every member is stored (not compressed), that the declared sizes fit the file and the
caps, and that every tensor's offset, sizes and strides stay inside its storage, checked again against
the bytes actually read.
"""
from __future__ import annotations

import io
import os
import pickle
import pickletools
import re
import reprlib
import zipfile
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from ._formats import (  # noqa: F401  (the magics: re-exported)
    LEGACY_MAGIC,
    ZIP_MAGIC,
    bf16_to_f32,
    is_index as _is_index,
    sniff,
)
from .errors import CheckpointError, LegacyFormatError  # defined there; re-exported from here
from .weights import open_regular

MAX_TOTAL_BYTES = 2 << 30  # all members together, and all state-dict tensors together
MAX_PICKLE_BYTES = 16 << 20  # data.pkl of a real checkpoint: ~100 bytes per tensor
MAX_MEMBERS = 1 << 16
MAX_DEPTH = 1000  # nesting of containers in the pickle; a state dict needs 6 or so
MAX_DIMS = 64  # dims of a tensor (NumPy's limit)

LEGACY_MESSAGE = ("legacy (pre-1.6) torch.save format: re-save it with torch>=1.6, or convert it with "
                  "tools/convert_weights.py where torch is installed")
_STORAGE_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")


class _ShortRepr(reprlib.Repr):
    """repr for messages about objects from the pickle: bounded in depth and length whatever they hold
    (plain repr recurses without limit and refuses ints over 4300 digits)."""

    def __init__(self):
        super().__init__()
        self.maxlevel, self.maxstring, self.maxother = 3, 60, 60

    def repr_int(self, x, level):
        return repr(x) if x.bit_length() <= 128 else f"<a {x.bit_length()}-bit integer>"

    def repr_bytes(self, x, level):
        return repr(x) if len(x) <= self.maxstring else repr(x[:self.maxstring]) + f"...({len(x)} bytes)"


_show = _ShortRepr().repr


# numpy dtype (None: bfloat16, decoded by hand) and whether it is a floating-point type
_STORAGE_TYPES = {
    "DoubleStorage": ("f8", True), "FloatStorage": ("f4", True), "HalfStorage": ("f2", True),
    "BFloat16Storage": (None, True), "LongStorage": ("i8", False), "IntStorage": ("i4", False),
    "ShortStorage": ("i2", False), "CharStorage": ("i1", False), "ByteStorage": ("u1", False),
    "BoolStorage": ("?", False), "UInt16Storage": ("u2", False), "UInt32Storage": ("u4", False),
    "UInt64Storage": ("u8", False), "ComplexFloatStorage": ("c8", False),
    "ComplexDoubleStorage": ("c16", False),
}
_SCALAR_DTYPES = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"}


class _Inert:
    """Base of every object the pickle can reach: it refuses BUILD, so the pickle cannot set attributes."""

    __slots__ = ()

    def __setstate__(self, state):
        raise CheckpointError(f"the pickle tries to set the state of {self!r}, which no state dict does")


class _StorageType(_Inert):
    __slots__ = ("name", "dtype", "is_float")

    def __init__(self, name: str):
        self.name = name
        self.dtype, self.is_float = _STORAGE_TYPES[name]

    @property
    def itemsize(self) -> int:
        return 2 if self.dtype is None else np.dtype(self.dtype).itemsize

    def __repr__(self):
        return f"torch.{self.name}"


class _Storage(_Inert):
    """A storage member, not yet read: `numel` elements of `type`. Slotted and BUILD-proof: its size is
    checked against the archive once, when persistent_load creates it, and must not change after."""

    __slots__ = ("key", "type", "numel")

    def __init__(self, key: str, stype: _StorageType, numel: int):
        self.key, self.type, self.numel = key, stype, numel

    def __repr__(self):
        return f"storage({self.key!r}, {self.type}, {self.numel})"


class _Tensor(_Inert):
    """A tensor as the pickle describes it: a strided view of `size` (elements) into a storage, negated
    when torch saved it with its lazy negation bit set."""

    __slots__ = ("storage", "offset", "size", "stride", "negated")

    def __init__(self, storage, offset, size, stride, metadata):
        if not isinstance(storage, _Storage):
            raise CheckpointError(f"a tensor is rebuilt from {type(storage).__name__}, not from a storage record")
        if not (isinstance(size, tuple) and isinstance(stride, tuple)):
            raise CheckpointError(f"a tensor has a malformed layout: size {_show(size)}, stride {_show(stride)} "
                                  f"(expected tuples of non-negative integers)")
        _check_layout(offset, size, stride, storage.numel, storage.key)
        # torch.save records the conjugate and negative view bits here; a real tensor can only be negated
        if metadata is not None and not (isinstance(metadata, dict) and set(metadata) <= {"neg", "conj"}
                                         and not metadata.get("conj")):
            raise CheckpointError(f"unsupported tensor metadata {_show(metadata)} (msf reads the 'neg' bit only)")
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.negated = bool(metadata and metadata.get("neg"))

    @property
    def nbytes(self) -> int:
        count = 1
        for s in self.size:
            count *= s
        return count * self.storage.type.itemsize

    def __repr__(self):
        return f"tensor({self.storage.type.name}, size={list(self.size)})"


def _check_layout(offset, size: tuple, stride: tuple, numel: int, key: str) -> None:
    """Element idx of the view is storage[offset + idx . stride]: every element it reads must lie in the
    storage's `numel` elements. Values are capped before any arithmetic, so the strides and extents NumPy
    is given fit its 64-bit integers."""
    if not (_is_index(offset) and len(size) == len(stride) and all(map(_is_index, size + stride))):
        raise CheckpointError(f"a tensor has a malformed layout: offset {_show(offset)}, size {_show(size)}, "
                              f"stride {_show(stride)} (expected non-negative integers, one stride per dim)")
    if len(size) > MAX_DIMS:
        raise CheckpointError(f"a tensor has {len(size)} dims, over the cap of {MAX_DIMS}")
    extent = 1
    for s in size:
        extent *= max(s, 1)
        if extent > MAX_TOTAL_BYTES:
            break
    if extent > MAX_TOTAL_BYTES or offset > MAX_TOTAL_BYTES or any(st > MAX_TOTAL_BYTES for st in stride):
        raise CheckpointError(f"a tensor of size {_show(size)}, stride {_show(stride)} at offset {_show(offset)} "
                              f"spans more than {MAX_TOTAL_BYTES} elements: no checkpoint msf reads is that large")
    if 0 not in size:  # the last element it reads must lie inside the storage
        last = offset + sum((n - 1) * st for n, st in zip(size, stride))
        if last >= numel:
            raise CheckpointError(f"a tensor of size {list(size)}, stride {list(stride)} at offset {offset} "
                                  f"reads element {last} of storage {key!r}, which has only {numel}")
    elif offset > numel:
        raise CheckpointError(f"an empty tensor starts at offset {offset}, past storage {key!r} "
                              f"({numel} elements)")


class _Function(_Inert):
    """An allowlisted global: calls go to `fn`, one of this module's own functions."""

    __slots__ = ("qualname", "fn")

    def __init__(self, qualname: str, fn):
        self.qualname, self.fn = qualname, fn

    def __call__(self, *args):
        return self.fn(*args)

    def __repr__(self):
        return self.qualname


class _OrderedDict(dict):
    """collections.OrderedDict as a plain dict; the state the pickle gives it (a state dict's
    `_metadata` of module versions) is dropped."""

    __slots__ = ()

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise CheckpointError("the pickle gives an OrderedDict a state that is not a dict")


class _ScalarDType(_Inert):
    """numpy.dtype, as pickled for a NumPy scalar (e.g. a trainer's `performance`): numeric types only."""

    __slots__ = ("code", "order")

    def __init__(self, code, align=False, copy=True):
        if code not in _SCALAR_DTYPES:
            raise CheckpointError(f"the pickle builds numpy.dtype({_show(code)}); only numeric scalars are allowed")
        self.code, self.order = code, "<"

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 8 and state[1] in ("<", ">", "|", "=")):
            raise CheckpointError(f"malformed numpy dtype state {_show(state)}")
        self.order = "<" if state[1] in "|=" else state[1]


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return _Tensor(storage, offset, size, stride, metadata)


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None):
    if not isinstance(data, _Tensor):
        raise CheckpointError(f"a parameter is rebuilt from {type(data).__name__}, not from a tensor")
    return data


def _numpy_scalar(dtype, data):
    if not isinstance(dtype, _ScalarDType) or not isinstance(data, bytes):
        raise CheckpointError("malformed NumPy scalar in the pickle")
    dt = np.dtype(dtype.code).newbyteorder(dtype.order)
    if len(data) != dt.itemsize:
        raise CheckpointError(f"a NumPy {dtype.code} scalar has {len(data)} bytes, expected {dt.itemsize}")
    return np.frombuffer(data, dtype=dt)[0].item()


def _latin1(text, encoding):
    # protocol 2 has no bytes opcode: bytes are pickled as _codecs.encode(str, "latin1")
    if not isinstance(text, str) or encoding != "latin1":
        raise CheckpointError(f"the pickle calls _codecs.encode with {_show(encoding)}; only bytes as latin1 are "
                              f"allowed")
    return text.encode("latin1")


def _set(items=()):
    return set(items)


def _frozenset(items=()):
    return frozenset(items)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): _OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _Function("torch._utils._rebuild_tensor_v2", _rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): _Function("torch._utils._rebuild_parameter", _rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"):
        _Function("torch._utils._rebuild_parameter_with_state", _rebuild_parameter),
    ("_codecs", "encode"): _Function("_codecs.encode", _latin1),
    ("numpy", "dtype"): _Function("numpy.dtype", _ScalarDType),
    ("numpy.core.multiarray", "scalar"): _Function("numpy.core.multiarray.scalar", _numpy_scalar),
    ("numpy._core.multiarray", "scalar"): _Function("numpy._core.multiarray.scalar", _numpy_scalar),
    **{(module, "set"): _Function("builtins.set", _set) for module in ("builtins", "__builtin__")},
    **{(module, "frozenset"): _Function("builtins.frozenset", _frozenset)
       for module in ("builtins", "__builtin__")},
    **{("torch", name): _StorageType(name) for name in _STORAGE_TYPES},
}


class _Unpickler(pickle.Unpickler):
    """Resolves globals only through the allowlist and storages only through the archive's members."""

    def __init__(self, data: bytes, archive: "_Archive"):
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"the checkpoint's pickle refers to {module}.{name}, which a state dict never needs; it was "
                f"refused without being imported or run (the file may be malicious, or it stores objects "
                f"other than tensors: save model.state_dict() instead)") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"unsupported persistent id {_show(pid)}: expected a storage record")
        _, stype, key, _location, numel = pid
        if not isinstance(stype, _StorageType) or not isinstance(key, str) or not _is_index(numel) \
                or not _STORAGE_KEY.fullmatch(key):
            raise CheckpointError(f"malformed storage record {_show(pid)}")
        if numel * stype.itemsize > MAX_TOTAL_BYTES:
            raise CheckpointError(f"storage {key!r} declares {_show(numel)} elements of {stype}, over the "
                                  f"{MAX_TOTAL_BYTES}-byte cap")
        known = self._storages.get(key)
        if known is not None:
            if (known.type, known.numel) != (stype, numel):
                raise CheckpointError(f"storage {key!r} is declared twice with different types or sizes")
            return known
        size = self._archive.size(f"data/{key}")
        if size != numel * stype.itemsize:
            raise CheckpointError(f"storage {key!r} declares {numel} elements of {stype} "
                                  f"({numel * stype.itemsize} bytes) but its archive member has {size} bytes")
        self._storages[key] = storage = _Storage(key, stype, numel)
        return storage


# Opcodes that make a container of what they take from the stack, and those that add to one in place.
_BUILDS = {"EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_LIST", "LIST", "EMPTY_DICT", "DICT",
           "EMPTY_SET", "FROZENSET"}
_MUTATES = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}
_MARK = object()


def _prescan(data: bytes) -> None:
    """Walks the opcodes without executing them. The C unpickler sizes its memo by the largest index a
    PUT names and allocates counted strings before reading them, so a few forged bytes could demand
    gigabytes. Here every length is checked against the data, and memo indices against the number of
    opcodes before them (picklers number memo entries 0, 1, 2, ...).

    It also tracks the stack, one nesting depth per object (a one-item list shared by every reference to
    it, the memo's included), and refuses containers nested deeper than MAX_DEPTH: hashing a tuple of
    tuples recurses on the C stack with no guard (300 KB of TUPLE1 opcodes overflow it). The depth of a
    tuple or frozenset is exact, since they are immutable and made of what the stack holds then. A list or
    dict deepened in place after it was put in another container does not re-count that container: no
    harm, as nothing recurses through mutable containers unguarded (they cannot be hashed, repr and
    comparison raise RecursionError, deallocation is iterative, and messages use _show). A call's result
    counts as deep as its
    arguments (an upper bound for the allowlisted functions)."""
    stack: list = []
    memo: dict = {}

    def pop():
        if not stack or stack[-1] is _MARK:
            raise CheckpointError(f"malformed pickle: opcode {count} ({opcode.name}) finds the stack empty")
        return stack.pop()

    def pop_to_mark():
        items = []
        while stack and stack[-1] is not _MARK:
            items.append(stack.pop())
        if not stack:
            raise CheckpointError(f"malformed pickle: opcode {count} ({opcode.name}) has no MARK before it")
        stack.pop()
        return items

    def depth(cells, extra=0):
        d = max((c[0] for c in cells), default=0) + extra
        if d > MAX_DEPTH:
            raise CheckpointError(f"the pickle nests containers {d} deep at opcode {count} ({opcode.name}), over "
                                  f"the cap of {MAX_DEPTH}: a state dict nests a few levels (forged or corrupted)")
        return d

    try:
        for count, (opcode, arg, _) in enumerate(pickletools.genops(data)):
            name = opcode.name
            if name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                index = len(memo) if name == "MEMOIZE" else arg
                if not (isinstance(index, int) and 0 <= index <= count):
                    raise CheckpointError(f"the pickle's opcode {count} stores memo entry {_show(index)}: forged or "
                                          f"corrupted")
                memo[index] = stack[-1] if stack and stack[-1] is not _MARK else pop()
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if arg not in memo:
                    raise CheckpointError(f"malformed pickle: opcode {count} reads memo entry {_show(arg)}, "
                                          f"which was never stored")
                stack.append(memo[arg])
            elif name == "MARK":
                stack.append(_MARK)
            elif name == "POP":  # pops a MARK when one is on top, as the unpickler does
                if stack and stack[-1] is _MARK:
                    stack.pop()
                else:
                    pop()
            elif name == "DUP":
                stack.append(stack[-1] if stack and stack[-1] is not _MARK else pop())
            elif name == "STOP":
                break
            else:
                before = opcode.stack_before
                if pickletools.markobject in before:
                    taken = pop_to_mark()
                    taken += [pop() for _ in range(before.index(pickletools.markobject))]
                else:
                    taken = [pop() for _ in before]
                if name in _MUTATES:  # the container is the deepest of what was taken
                    container = taken[-1]
                    container[0] = max(container[0], depth(taken[:-1], 1))
                    stack.append(container)
                elif opcode.stack_after:
                    stack.append([depth(taken, 1 if name in _BUILDS else 0)])
    except CheckpointError:
        raise
    except (ValueError, TypeError, OverflowError, UnicodeError) as e:
        raise CheckpointError(f"malformed pickle: {e}") from None


class _Archive:
    """The members of a torch.save zip archive under its one top-level folder, checked before any read."""

    def __init__(self, file: BinaryIO, file_size: int):
        try:
            self._zip = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
            raise CheckpointError(f"not a readable zip archive (truncated or corrupted?): {e}") from None
        infos = self._zip.infolist()
        if not infos:
            raise CheckpointError("the zip archive is empty: not a torch.save checkpoint")
        if len(infos) > MAX_MEMBERS:
            raise CheckpointError(f"the zip archive has {len(infos)} members, over the cap of {MAX_MEMBERS}")
        self.prefix = infos[0].filename.split("/", 1)[0]
        self._members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            if not name.startswith(self.prefix + "/"):
                raise CheckpointError(f"member {name!r} is outside the archive's folder {self.prefix!r}/: "
                                      f"not a torch.save checkpoint")
            rel = name[len(self.prefix) + 1:]
            if rel in self._members:
                raise CheckpointError(f"member {name!r} appears twice in the archive")
            self._members[rel] = info
        if "constants.pkl" in self._members or any(rel.startswith("code/") for rel in self._members):
            raise CheckpointError("this is a TorchScript archive (torch.jit.save), not a checkpoint: msf reads "
                                  "state dicts; save one with torch.save(model.state_dict(), path)")
        if "data.pkl" not in self._members:
            raise CheckpointError(f"the archive has no {self.prefix}/data.pkl: not a torch.save checkpoint")
        total = 0
        for info in infos:
            name = info.filename
            if info.compress_type != zipfile.ZIP_STORED:
                raise CheckpointError(f"member {name!r} is compressed (method {info.compress_type}); torch.save "
                                      f"stores members uncompressed, and compressed ones are refused (zip bombs)")
            if info.flag_bits & 0x1:
                raise CheckpointError(f"member {name!r} is encrypted")
            if info.compress_size != info.file_size or info.header_offset + info.file_size > file_size:
                raise CheckpointError(f"member {name!r} declares {info.file_size} bytes at offset "
                                      f"{info.header_offset}, beyond the {file_size}-byte file")
            total += info.file_size
        if total > min(file_size, MAX_TOTAL_BYTES):
            raise CheckpointError(f"the archive's members declare {total} bytes in all, more than the file "
                                  f"({file_size} bytes) or the {MAX_TOTAL_BYTES}-byte cap allows")

    def size(self, rel: str) -> int:
        if rel not in self._members:
            raise CheckpointError(f"the archive has no member {self.prefix}/{rel}")
        return self._members[rel].file_size

    def read(self, rel: str, limit: int = MAX_TOTAL_BYTES) -> bytes:
        size = self.size(rel)
        if size > limit:
            raise CheckpointError(f"member {self.prefix}/{rel} has {size} bytes, over the cap of {limit}")
        try:
            with self._zip.open(self._members[rel]) as f:  # checks the CRC at the end
                data = f.read(size + 1)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
            raise CheckpointError(f"member {self.prefix}/{rel} cannot be read (truncated or corrupted?): {e}") \
                from None
        if len(data) != size:
            raise CheckpointError(f"member {self.prefix}/{rel} has {len(data)} bytes, not the declared {size}")
        return data

    def byteorder(self) -> str:
        if "byteorder" not in self._members:
            return "<"  # what torch assumes for archives without the record
        order = self.read("byteorder", limit=16)
        if order not in (b"little", b"big"):
            raise CheckpointError(f"unknown byteorder record {order!r}: expected b'little' or b'big'")
        return "<" if order == b"little" else ">"


def _materialise(tensor: _Tensor, archive: _Archive, order: str, cache: dict) -> np.ndarray:
    """The tensor as a C-contiguous NumPy array in native byte order (bfloat16 becomes float32, exactly)."""
    storage = tensor.storage
    if storage.key not in cache:
        raw = archive.read(f"data/{storage.key}")
        if storage.type.dtype is None:
            flat = bf16_to_f32(raw, order)
        else:
            flat = np.frombuffer(raw, dtype=np.dtype(storage.type.dtype).newbyteorder(order))
            flat = flat.astype(flat.dtype.newbyteorder("="), copy=False)
        cache[storage.key] = flat
    flat = cache[storage.key]
    # again, against the elements actually read: as_strided trusts its arguments
    _check_layout(tensor.offset, tensor.size, tensor.stride, len(flat), storage.key)
    view = np.lib.stride_tricks.as_strided(flat[tensor.offset:], shape=tensor.size,
                                           strides=[s * flat.itemsize for s in tensor.stride], writeable=False)
    return np.negative(view, order="C") if tensor.negated else np.array(view, order="C")


def _state_dict(obj, is_tensor=lambda v: isinstance(v, _Tensor),
                dtype_of=lambda v: (str(v.storage.type), v.storage.type.is_float)) -> dict:
    """The tensors of the state dict inside a trainer checkpoint ({'state_dict': ...}) or of the saved
    object itself, by name without `module.`. dtype_of(tensor) gives (dtype name, is floating point)."""
    if isinstance(obj, dict) and "state_dict" in obj:
        obj, where = obj["state_dict"], "the checkpoint's 'state_dict'"
    elif isinstance(obj, dict) and obj and not all(map(is_tensor, obj.values())):
        raise CheckpointError(f"the checkpoint has no 'state_dict' entry and is not a state dict itself "
                              f"(top-level keys: {', '.join(sorted(map(_key_text, obj))[:20])})")
    else:
        where = "the saved object"
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{where} is not a state dict (a non-empty dict of tensors): found "
                              f"{'an empty dict' if isinstance(obj, dict) else type(obj).__name__}")
    state = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{where} has a non-string key {_show(key)}")
        if not is_tensor(value):
            raise CheckpointError(f"{where}[{_show(key)}] is a {type(value).__name__}, not a tensor")
        name = key[len("module."):] if key.startswith("module.") else key  # nn.DataParallel's prefix
        if name in state:
            raise CheckpointError(f"{where} has both {name!r} and 'module.{name}'")
        dtype, is_float = dtype_of(value)
        if not is_float:
            raise CheckpointError(f"tensor {key!r} is stored as {dtype}, not floating point: a MixSynthFormer "
                                  f"state dict holds float parameters only")
        state[name] = value
    return state


def _key_text(key) -> str:
    return key if isinstance(key, str) and len(key) <= 60 else _show(key)


def _short_scalar(v) -> bool:
    if isinstance(v, int):  # before str(): ints over 4300 digits refuse conversion
        return v.bit_length() <= 600
    return isinstance(v, (float, str)) and len(str(v)) <= 200


def _fields(obj) -> dict:
    if not (isinstance(obj, dict) and "state_dict" in obj):
        return {}
    return {k: v for k, v in obj.items() if isinstance(k, str) and _short_scalar(v)}


@dataclass(frozen=True)
class Checkpoint:
    """state_dict: float tensors by name, `module.` stripped (float16/32/64 as stored; bfloat16 as float32);
    fields: the top-level scalar entries of a trainer checkpoint (e.g. epoch, performance)."""

    state_dict: dict[str, np.ndarray]
    fields: dict[str, int | float | str | bool]


def _sniff(head: bytes) -> None:
    """Refuses, by their first bytes, files that are not zip archives, naming what they are."""
    kind = sniff(head)
    if kind == "zip":
        return
    if not head:
        raise CheckpointError("the file is empty")
    if kind == "legacy":
        raise LegacyFormatError(LEGACY_MESSAGE)
    if kind == "pickle":
        raise CheckpointError("a bare pickle, not a torch.save zip archive: msf never unpickles such files "
                              "(they can run code); re-save it with torch.save(state_dict, path), torch>=1.6")
    if kind == "safetensors":
        raise CheckpointError("this is already a safetensors file: load it with msf.Refiner.load, no "
                              "conversion needed")
    raise CheckpointError(f"not a PyTorch checkpoint: a torch.save file is a zip archive starting with "
                          f"{ZIP_MAGIC!r}, this one starts with {head[:8]!r}")


def load_checkpoint(source: str | os.PathLike | bytes | bytearray | memoryview) -> Checkpoint:
    """Reads a torch.save checkpoint (path or bytes) without torch and without executing anything.

    Accepts a trainer checkpoint (a dict with 'state_dict'; other entries such as the optimizer state
    are parsed under the same allowlist and ignored) or a bare state dict. Raises CheckpointError (a
    WeightsError) naming the problem: not a zip archive, legacy format (LegacyFormatError), TorchScript,
    compressed or oversized members, a refused global, malformed tensors, non-float parameters.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _load(io.BytesIO(bytes(source)), len(source))
    try:
        with open_regular(source) as f:  # not a FIFO or device: they would block or never end
            return _load(f, os.fstat(f.fileno()).st_size)
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {os.fspath(source)!r}: {e.strerror or e}") from None


def read_checkpoint(source: str | os.PathLike | bytes | bytearray | memoryview) -> dict[str, np.ndarray]:
    """The state dict of a torch.save checkpoint: {name without `module.`: float array}. See load_checkpoint."""
    return load_checkpoint(source).state_dict


def _load(file: BinaryIO, file_size: int) -> Checkpoint:
    _sniff(file.read(512))
    file.seek(0)
    archive = _Archive(file, file_size)
    pickled = archive.read("data.pkl", limit=MAX_PICKLE_BYTES)
    _prescan(pickled)
    unpickler = _Unpickler(pickled, archive)
    try:
        obj = unpickler.load()
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, KeyError, IndexError,
            OverflowError, RecursionError, UnicodeError) as e:
        raise CheckpointError(f"malformed pickle in {archive.prefix}/data.pkl: {type(e).__name__}: {e}") from None
    tensors = _state_dict(obj)
    # Views can repeat storage elements (stride 0, shared storages): bound what they expand to by the file.
    total = sum(t.nbytes for t in tensors.values())
    if total > min(file_size, MAX_TOTAL_BYTES):
        raise CheckpointError(f"the state dict's tensors hold {total} bytes, more than the {file_size}-byte file "
                              f"stores or the {MAX_TOTAL_BYTES}-byte cap allows (broadcast or shared views?): "
                              f"save contiguous tensors, e.g. {{k: v.clone() for k, v in state_dict.items()}}")
    order, cache = archive.byteorder(), {}
    state = {name: _materialise(t, archive, order, cache) for name, t in tensors.items()}
    return Checkpoint(state, _fields(obj))
