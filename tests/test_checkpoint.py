"""The restricted checkpoint reader (msf.checkpoint): torch.save archives read without torch.

With torch installed, every array must be bit-identical to torch.load(weights_only=True). Malicious and
malformed archives, written here by hand (no torch needed), must raise CheckpointError and run nothing.
"""
import io
import os
import pickle
import pickletools
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from helpers import OFFICIAL, archive, member, op_dict, op_global, op_int, op_str, op_tensor, op_tuple
from msf import checkpoint
from msf.checkpoint import CheckpointError, LegacyFormatError, load_checkpoint, read_checkpoint
from msf.errors import WeightsError


def saved(torch, obj, **kwargs) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    return buf.getvalue()


def assert_bit_identical(ours: dict, theirs: dict, torch):
    """Same names, dtypes, shapes and bytes (bfloat16, which NumPy lacks, compared as its exact float32)."""
    assert list(ours) == list(theirs)
    for name, tensor in theirs.items():
        tensor = tensor.detach().resolve_neg()
        expected = (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).contiguous().numpy()
        got = ours[name]
        assert got.dtype == expected.dtype and got.shape == expected.shape, name
        assert got.flags.c_contiguous and got.tobytes() == expected.tobytes(), name


def trainer_checkpoint(torch, model, dtype=None) -> dict:
    """What the official trainer saves, after one Adam step so the optimizer state holds tensors."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    c = model.l_interp.weight.shape
    kf = torch.randn(2, c[1], model.encoder_emb.weight.shape[1], dtype=model.l_interp.weight.dtype)
    model.forward_keyframes(kf).square().mean().backward()
    opt.step()
    return {"epoch": 7, "state_dict": model.state_dict(), "performance": 41.25, "optimizer": opt.state_dict()}


# --- real torch.save files: bit-identical to torch.load -------------------------------------------------

@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_trainer_checkpoints_match_torch_load(torch, name):
    from torch_model import random_model
    model = random_model(*OFFICIAL[name], seed=1, dtype=torch.float32).train()
    data = saved(torch, trainer_checkpoint(torch, model))
    ckpt = load_checkpoint(data)
    assert_bit_identical(ckpt.state_dict, torch.load(io.BytesIO(data), weights_only=True)["state_dict"], torch)
    assert ckpt.fields == {"epoch": 7, "performance": 41.25}


def test_dataparallel_prefix_is_stripped(torch):
    from torch_model import random_model
    model = random_model(*OFFICIAL["pw3d"], dtype=torch.float32)
    wrapped = torch.nn.DataParallel(model).state_dict()
    assert all(k.startswith("module.") for k in wrapped)
    ours = read_checkpoint(saved(torch, {"state_dict": wrapped, "epoch": 1}))
    assert_bit_identical(ours, model.state_dict(), torch)


def test_bare_state_dict_and_path_input(torch, tmp_path):
    from torch_model import random_model
    state = random_model(*OFFICIAL["jhmdb"], dtype=torch.float32).state_dict()
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    ours = read_checkpoint(path)
    assert_bit_identical(ours, torch.load(path, weights_only=True), torch)
    assert load_checkpoint(str(path)).fields == {}
    assert all(np.array_equal(ours[k], v) for k, v in read_checkpoint(path.read_bytes()).items())


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_any_pickle_protocol_torch_can_write(torch, protocol):
    from torch_model import random_model
    state = random_model(*OFFICIAL["jhmdb"], dtype=torch.float32).state_dict()
    data = saved(torch, {"state_dict": state, "epoch": 2}, pickle_protocol=protocol)
    assert_bit_identical(read_checkpoint(data), state, torch)


def test_parameters_saved_as_nn_parameter(torch):
    from torch_model import random_model
    params = dict(random_model(*OFFICIAL["h36m"], dtype=torch.float32).named_parameters())
    data = saved(torch, params)
    assert b"_rebuild_parameter" in data
    assert_bit_identical(read_checkpoint(data), torch.load(io.BytesIO(data), weights_only=True), torch)


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_float_dtypes(torch, dtype):
    from torch_model import random_model
    model = random_model(*OFFICIAL["pw3d"], dtype=getattr(torch, dtype))
    data = saved(torch, {"state_dict": model.state_dict(), "epoch": 0})
    ours = read_checkpoint(data)
    assert_bit_identical(ours, torch.load(io.BytesIO(data), weights_only=True)["state_dict"], torch)
    assert ours["fc.weight"].dtype == (np.float32 if dtype == "bfloat16" else np.dtype(dtype))


def test_strided_shared_and_empty_tensors(torch):
    base = torch.randn(6, 8, dtype=torch.float64)
    state = {"transposed": base.t(), "rows": base[2:4], "every_other": base[:, ::2], "column": base[:, 5],
             "expanded": torch.randn(3, 1).expand(3, 4), "scalar": torch.tensor(2.5), "empty": torch.empty(0, 3),
             "offset_view": base.view(-1)[7:19].view(3, 4), "lazily_negated": base[1]._neg_view()}
    data = saved(torch, state)
    ours = read_checkpoint(data)
    assert_bit_identical(ours, torch.load(io.BytesIO(data), weights_only=True), torch)


def rewrite(data: bytes, change=lambda rel, payload: payload, compression=zipfile.ZIP_STORED,
            extra: dict | None = None) -> bytes:
    """A copy of a zip archive with each member's payload passed through change(relative name, payload)."""
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as dst:
        for info in src.infolist():
            prefix, rel = info.filename.split("/", 1)
            payload = change(rel, src.read(info))
            if payload is not None:
                dst.writestr(member(info.filename), payload, compress_type=compression)
        for rel, payload in (extra or {}).items():
            dst.writestr(member(f"{prefix}/{rel}"), payload, compress_type=compression)
    return out.getvalue()


def test_big_endian_archive_honours_byteorder(torch):
    state = {"f32": torch.randn(3, 5), "f64": torch.randn(4, dtype=torch.float64),
             "f16": torch.randn(2, 2).half(), "bf16": torch.randn(7).bfloat16()}
    itemsize = {}
    data = saved(torch, state)
    for key, tensor in torch.load(io.BytesIO(data), weights_only=True).items():
        itemsize[key] = tensor.element_size()
    order = list(state)  # torch numbers storages in the order it meets them

    def to_big(rel, payload):
        if rel == "byteorder":
            return b"big"
        if rel.startswith("data/"):
            size = itemsize[order[int(rel[5:])]]
            return np.frombuffer(payload, dtype=f"<u{size}").byteswap().tobytes()
        return payload

    big = rewrite(data, to_big)
    theirs = torch.load(io.BytesIO(big), weights_only=True)
    assert_bit_identical(read_checkpoint(big), theirs, torch)
    assert_bit_identical(read_checkpoint(big), state, torch)


def test_numpy_scalars_bytes_and_sets_outside_the_state_dict(torch):
    ckpt = {"state_dict": {"w": torch.ones(2)}, "performance": np.float64(12.5), "best": np.int64(3),
            "tag": b"\x00\xffabc", "seen": {1, 2}, "frozen": frozenset({"a"})}
    got = load_checkpoint(saved(torch, ckpt))
    assert got.fields == {"performance": 12.5, "best": 3}
    assert got.state_dict["w"].tolist() == [1.0, 1.0]


def test_legacy_format_refused_without_reading_it(torch):
    data = saved(torch, {"state_dict": {"w": torch.ones(2)}}, _use_new_zipfile_serialization=False)
    with pytest.raises(LegacyFormatError, match=r"legacy \(pre-1.6\) torch.save format: re-save it with torch>=1.6"):
        read_checkpoint(data)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_archive_refused(torch, tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), str(path))
    with pytest.raises(CheckpointError, match="TorchScript archive"):
        read_checkpoint(path)


def test_non_float_tensors_refused(torch):
    with pytest.raises(CheckpointError, match=r"'module.steps' is stored as torch.LongStorage, not floating"):
        read_checkpoint(saved(torch, {"state_dict": {"module.w": torch.ones(2),
                                                     "module.steps": torch.ones(2).long()}}))
    with pytest.raises(CheckpointError, match="BoolStorage"):
        read_checkpoint(saved(torch, {"mask": torch.ones(2, dtype=torch.bool)}))


def test_optimizer_tensors_of_any_dtype_are_ignored(torch):
    ckpt = {"state_dict": {"w": torch.ones(2)},
            "optimizer": {"state": {0: {"step": torch.tensor(3), "mask": torch.zeros(4, dtype=torch.bool)}},
                          "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0], "foreach": None}]}}
    assert list(read_checkpoint(saved(torch, ckpt))) == ["w"]


def test_deflated_torch_archive_refused(torch):
    data = rewrite(saved(torch, {"w": torch.zeros(1000)}), compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(CheckpointError, match="compressed"):
        read_checkpoint(data)


# --- hand-written archives: no torch needed -------------------------------------------------------------

SIX = np.arange(6, dtype="<f4").tobytes()


def state_archive(**tensor_args) -> bytes:
    return archive(b"\x80\x02" + op_dict({"w": op_tensor(**tensor_args)}) + b".", {"0": SIX})


def test_hand_written_archive_reads():
    got = read_checkpoint(state_archive())
    np.testing.assert_array_equal(got["w"], np.arange(6, dtype=np.float32).reshape(2, 3))
    got = read_checkpoint(state_archive(offset=1, size=(2, 2), stride=(1, 2)))  # transposed view at offset 1
    np.testing.assert_array_equal(got["w"], [[1, 3], [2, 4]])
    assert got["w"].flags.c_contiguous
    got = read_checkpoint(state_archive(location="cuda:0", metadata=b"}" + op_str("neg") + b"\x88s"))
    np.testing.assert_array_equal(got["w"], -np.arange(6).reshape(2, 3))  # saved on a GPU, lazily negated


class Payload:
    """Unpickling this with pickle.loads would call `fn(*args)`."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def code_payloads(marker: Path):
    import builtins
    import subprocess
    return {
        "os.system": Payload(os.system, f"touch {marker}"),
        "builtins.exec": Payload(builtins.exec, f"open({str(marker)!r}, 'w').close()"),
        "builtins.eval": Payload(builtins.eval, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.call": Payload(subprocess.call, ["touch", str(marker)]),
    }


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("payload", ["os.system", "builtins.exec", "builtins.eval", "subprocess.call"])
def test_code_executing_pickle_refused_and_not_run(tmp_path, payload, protocol):
    marker = tmp_path / "pwned"
    evil = code_payloads(marker)[payload]
    pickled = pickle.dumps({"epoch": 1, "state_dict": {"w": evil}}, protocol=protocol)
    with pytest.raises(CheckpointError, match=r"refers to \S+, which a state dict never needs; it was refused "
                                              r"without being imported or run"):
        read_checkpoint(archive(pickled, {"0": SIX}))
    assert not marker.exists()
    # the same pickle outside the state dict (e.g. in the optimizer) is refused just the same
    with pytest.raises(CheckpointError, match="refused without being imported or run"):
        read_checkpoint(archive(pickle.dumps({"optimizer": evil, "state_dict": {}}, protocol=protocol)))
    assert not marker.exists()


def test_the_payload_is_live_for_an_unrestricted_unpickler(tmp_path):
    """Control for the test above: plain pickle.loads does run the payload (pure Python, no shell)."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(code_payloads(marker)["builtins.exec"], protocol=2))
    assert marker.exists()


@pytest.mark.parametrize("pickled, message", [
    # BUILD on an allowlisted stand-in: would set attributes on shared objects
    (op_global("torch._utils", "_rebuild_tensor_v2") + op_tuple(b"N", b"}" + op_str("__defaults__") + b"N" + b"s")
     + b"b", "tries to set the state"),
    (op_global("torch", "FloatStorage") + b"}b", "tries to set the state"),
    (op_global("collections", "OrderedDict") + b"}b", "malformed pickle"),
    # allowlisted functions called with anything but what torch.save writes
    (op_global("_codecs", "encode") + op_tuple(op_str("x"), op_str("rot13")) + b"R", "only bytes as latin1"),
    (op_global("numpy", "dtype") + op_tuple(op_str("O"), b"\x89", b"\x88") + b"R", "only numeric scalars"),
    (op_global("torch._utils", "_rebuild_tensor_v2") + op_tuple(op_str("x"), op_int(0), b")", b")", b"\x89", b"}")
     + b"R", "not from a storage record"),
    (op_global("torch._utils", "_rebuild_parameter") + op_tuple(op_str("x"), b"\x89", b"}") + b"R",
     "not from a tensor"),
    (op_tensor(pid=op_tuple(op_str("module"), op_str("x")) + b""), "unsupported persistent id"),
    (b"(" + op_str("x") + b"Q", "unsupported persistent id"),
    (op_tensor(metadata=b"}" + op_str("conj") + b"\x88s"), "unsupported tensor metadata"),
    (op_tensor(metadata=b"}" + op_str("python_state") + b"\x88s"), "unsupported tensor metadata"),
    (op_tensor(metadata=b"]"), "unsupported tensor metadata"),
    (b"X\x03\x00\x00\x00ab", "malformed pickle"),  # truncated
    (b"", "malformed pickle"),
])
def test_pickle_tricks_refused(pickled, message):
    data = archive(b"\x80\x02" + pickled + b".", {"0": SIX})
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(data)
    np.testing.assert_array_equal(read_checkpoint(state_archive())["w"].ravel(), np.arange(6))  # stand-ins intact


@pytest.mark.parametrize("tensor_args, message", [
    (dict(size=(2, 4), stride=(4, 1)), r"reads element 7 of storage '0', which has only 6"),
    (dict(offset=1), "reads element 6"),
    (dict(size=(3, 3), stride=(1, 2)), "reads element 6"),
    (dict(size=(0, 3), offset=7), "past storage"),
    (dict(offset=-1), "malformed layout"),
    (dict(size=(2, -3)), "malformed layout"),
    (dict(size=(2, 3), stride=(3,)), "malformed layout"),
    (dict(size=(0, 2**62), stride=(1, 1)), "spans more than"),
    (dict(size=(0, 2**40, 2**40), stride=(1, 1, 1)), "spans more than"),
    (dict(size=(1, 6), stride=(2**70, 1)), "spans more than"),
    (dict(numel=7), r"declares 7 elements of torch.FloatStorage \(28 bytes\) but its archive member has 24"),
    (dict(storage="DoubleStorage"), "declares 6 elements of torch.DoubleStorage"),
    (dict(key="1"), "no member archive/data/1"),
    (dict(key="../data.pkl"), "malformed storage record"),
    (dict(storage="IntStorage"), "is stored as torch.IntStorage, not floating point"),
    (dict(storage="QInt8Storage"), r"refers to torch.QInt8Storage"),
])
def test_malformed_tensor_records_refused(tensor_args, message):
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(state_archive(**tensor_args))


@settings(max_examples=200, deadline=None)
@given(size=st.lists(st.integers(0, 4), max_size=3), stride=st.lists(st.integers(0, 7), min_size=3, max_size=3),
       offset=st.integers(0, 8))
def test_strided_layouts_read_exactly_or_are_refused(size, stride, offset):
    """Element idx of a view is storage[offset + idx . stride]; views reaching past the storage are refused."""
    size, stride = tuple(size), tuple(stride[:len(size)])
    storage = np.arange(6, dtype=np.float32)
    indices = [offset + sum(i * s for i, s in zip(idx, stride)) for idx in np.ndindex(*size)]
    inside = max(indices) < 6 if indices else offset <= 6
    try:
        got = read_checkpoint(state_archive(size=size, stride=stride, offset=offset))["w"]
    except CheckpointError as e:
        assert not inside, e
        return
    assert inside and got.flags.c_contiguous
    np.testing.assert_array_equal(got, storage[indices].reshape(size) if indices else np.empty(size))


def test_storage_declared_twice_differently_refused():
    pickled = b"\x80\x02" + op_dict({"a": op_tensor(), "b": op_tensor(storage="IntStorage")}) + b"."
    with pytest.raises(CheckpointError, match="declared twice"):
        read_checkpoint(archive(pickled, {"0": SIX}))


@pytest.mark.parametrize("obj, message", [
    (op_dict({"epoch": op_int(1), "model": op_dict({"w": op_tensor()})}), "no 'state_dict' entry.*epoch, model"),
    (op_dict({"state_dict": op_dict({"w": op_tensor(), "n": op_int(3)})}), r"\['n'\] is a int, not a tensor"),
    (op_dict({"state_dict": op_dict({"w": op_tensor(), "module.w": op_tensor()})}), "both 'w' and 'module.w'"),
    (op_dict({"state_dict": b"}"}), "is not a state dict .*an empty dict"),
    (b"]", "is not a state dict .*list"),
])
def test_objects_that_are_not_state_dicts_refused(obj, message):
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(archive(b"\x80\x02" + obj + b".", {"0": SIX}))


def test_zip_bomb_refused_before_decompressing():
    bomb = archive(b"\x80\x02" + op_dict({"w": op_tensor(numel=1 << 26)}) + b".", {"0": bytes(1 << 28)},
                   compression=zipfile.ZIP_DEFLATED)
    assert len(bomb) < 1 << 20
    with pytest.raises(CheckpointError, match="is compressed.*zip bombs"):
        read_checkpoint(bomb)


def test_deflated_pickle_refused():
    with pytest.raises(CheckpointError, match="archive/data.pkl' is compressed"):
        read_checkpoint(archive(b"\x80\x02" + op_dict({"w": op_tensor()}) + b".", {"0": SIX},
                                compression=zipfile.ZIP_DEFLATED))


def patch_central_sizes(data: bytes, member: str, size: int) -> bytes:
    """Rewrites the compressed and uncompressed sizes of `member` in the central directory."""
    at = data.index(b"PK\x01\x02")
    while True:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + name_len] == member.encode():
            break
        at = data.index(b"PK\x01\x02", at + 4)
    return data[:at + 20] + struct.pack("<II", size, size) + data[at + 28:]


def test_sizes_beyond_the_file_refused():
    data = patch_central_sizes(state_archive(), "archive/data/0", 1 << 31)
    with pytest.raises(CheckpointError, match="beyond the .*-byte file"):
        read_checkpoint(data)


def test_caps_on_total_size_and_pickle(monkeypatch):
    data = state_archive()
    monkeypatch.setattr(checkpoint, "MAX_TOTAL_BYTES", 64)
    with pytest.raises(CheckpointError, match="more than the file .* or the 64-byte cap"):
        read_checkpoint(data)
    monkeypatch.undo()
    monkeypatch.setattr(checkpoint, "MAX_PICKLE_BYTES", 16)
    with pytest.raises(CheckpointError, match="data.pkl has .* bytes, over the cap of 16"):
        read_checkpoint(data)


def test_views_may_not_expand_beyond_the_file():
    """A stride-0 view of 6 floats claiming a billion elements would need 4 GB from a tiny file."""
    with pytest.raises(CheckpointError, match="tensors hold 4000000000 bytes, more than the .*-byte file"):
        read_checkpoint(state_archive(size=(1_000_000_000,), stride=(0,)))
    ok = read_checkpoint(state_archive(size=(4, 2), stride=(0, 1)))  # small broadcasts are fine
    np.testing.assert_array_equal(ok["w"], [[0, 1]] * 4)


@pytest.mark.parametrize("cut", [10, 100, 0.5, -22, -1])
def test_truncated_archive_refused(cut):
    data = state_archive()
    end = int(len(data) * cut) if isinstance(cut, float) else cut
    with pytest.raises(CheckpointError):
        read_checkpoint(data[:end])


def test_corrupted_storage_fails_the_crc():
    data = state_archive()
    at = data.index(SIX)
    with pytest.raises(CheckpointError, match="cannot be read"):
        read_checkpoint(data[:at] + b"\xff" + data[at + 1:])


@pytest.mark.parametrize("data, message", [
    (b"", "the file is empty"),
    (b"hello, world\n", r"not a PyTorch checkpoint: .* starts with b'hello, w'"),
    (checkpoint.LEGACY_MAGIC + b".\x80\x02}q\x00.", r"legacy \(pre-1.6\) torch.save format"),
    (b"\x80\x04\x95" + bytes(20), "a bare pickle, not a torch.save zip archive"),
    (struct.pack("<Q", 2) + b"{}", "already a safetensors file"),
    (b"PK\x03\x04" + bytes(40), "not a readable zip archive"),
])
def test_wrong_magic_refused(data, message):
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(data)


def test_legacy_is_a_distinct_weights_error():
    with pytest.raises(WeightsError):
        read_checkpoint(checkpoint.LEGACY_MAGIC + b".")
    assert issubclass(LegacyFormatError, CheckpointError) and issubclass(CheckpointError, WeightsError)


def test_checkpoint_errors_live_in_errors_and_are_re_exported():
    import msf
    from msf import errors
    assert checkpoint.CheckpointError is errors.CheckpointError is msf.CheckpointError
    assert checkpoint.LegacyFormatError is errors.LegacyFormatError


@pytest.mark.parametrize("records, message", [
    ({"byteorder": b"middle"}, "unknown byteorder record"),
    ({"constants.pkl": b"", "code/__torch__.py": b""}, "TorchScript archive"),
])
def test_bad_records_refused(records, message):
    data = archive(b"\x80\x02" + op_dict({"w": op_tensor()}) + b".", {"0": SIX}, records=records)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(data)


def zip_of(members: dict) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, payload in members.items():
            z.writestr(name, payload)
    return out.getvalue()


def test_archive_structure_refused():
    with pytest.raises(CheckpointError, match="'other/data/0' is outside the archive's folder 'archive'/"):
        read_checkpoint(zip_of({"archive/data.pkl": b"\x80\x02}.", "other/data/0": SIX}))
    with pytest.raises(CheckpointError, match="has no archive/data.pkl"):
        read_checkpoint(zip_of({"archive/version": b"3\n", "archive/data/0": SIX}))
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):  # an empty zip archive
        read_checkpoint(zip_of({}))


def test_duplicate_members_refused():
    out = io.BytesIO()
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(out, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02" + op_dict({"w": op_tensor()}) + b".")
        z.writestr("archive/data/0", SIX)
        z.writestr("archive/data/0", np.ones(6, "<f4").tobytes())
    with pytest.raises(CheckpointError, match="appears twice"):
        read_checkpoint(out.getvalue())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the stdlib warns on bad escapes in STRING opcodes
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
       cut=st.integers(0, 400))
def test_mutated_pickles_never_escape(edits, cut):
    """Any corruption of the pickle either reads or raises CheckpointError: no other exception, no code."""
    pickled = bytearray(b"\x80\x02" + op_dict({"epoch": op_int(3), "state_dict": op_dict(
        {"w": op_tensor(), "v": op_tensor(offset=1, size=(5,), stride=(1,))})}) + b".")
    for at, value in edits:
        pickled[at % len(pickled)] = value
    data = archive(bytes(pickled[:len(pickled) - cut % 8]), {"0": SIX})
    try:
        state = read_checkpoint(data)
    except CheckpointError:
        return
    assert all(isinstance(v, np.ndarray) and v.dtype.kind == "f" for v in state.values())


# --- issue 11: BUILD on created objects, deep nesting, huge integers, layouts against the real storage ---

def op_storage_pid(key="0", numel=6, storage="FloatStorage") -> bytes:
    return op_tuple(op_str("storage"), op_global("torch", storage), op_str(key), op_str("cpu"), op_int(numel))


def in_subprocess(data: bytes, tmp_path) -> subprocess.CompletedProcess:
    """read_checkpoint on `data` in a child process, so that a crash fails the test instead of ending the run."""
    path = tmp_path / "ckpt.pth"
    path.write_bytes(data)
    code = ("import sys\nfrom msf.checkpoint import read_checkpoint, CheckpointError\ntry:\n"
            f"    read_checkpoint({str(path)!r})\nexcept CheckpointError as e:\n    print('refused:', e)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def build_after_persid(stride: int) -> bytes:
    """The issue's attack: BUILD gives the storage record 2**40 elements after persistent_load checked its
    6, then a (5, 3) view with a large stride would read past the 24-byte member."""
    pid = op_storage_pid() + b"Q" + b"}" + op_str("numel") + op_int(2**40) + b"sb"
    tensor = op_global("torch._utils", "_rebuild_tensor_v2") + op_tuple(
        pid, op_int(0), op_tuple(op_int(5), op_int(3)), op_tuple(op_int(stride), op_int(1)), b"\x89",
        op_global("collections", "OrderedDict") + b")R") + b"R"
    return archive(b"\x80\x02" + op_dict({"w": tensor}) + b".", {"0": SIX})


def test_build_cannot_resize_a_storage_record():
    """Before: stride 64 returned heap bytes as weights."""
    with pytest.raises(CheckpointError, match=r"tries to set the state of storage\('0'"):
        read_checkpoint(build_after_persid(64))


def test_build_with_a_huge_stride_does_not_crash(tmp_path):
    """Before: stride 2**30 read unmapped memory (SIGSEGV)."""
    result = in_subprocess(build_after_persid(2**30), tmp_path)
    assert result.returncode == 0 and "refused: the pickle tries to set the state of storage" in result.stdout, \
        (result.returncode, result.stdout, result.stderr[-2000:])


# Every kind of object the unpickler can make, each followed by BUILD with a dict state and with the
# (state, slotstate) form. Only OrderedDict (state dropped) and numpy.dtype (a dtype state) accept BUILD.
BUILD_TARGETS = {
    "storage record": op_storage_pid() + b"Q",
    "tensor": op_tensor(),
    "parameter": op_global("torch._utils", "_rebuild_parameter") + op_tuple(op_tensor(), b"\x89", b"}") + b"R",
    "rebuild function": op_global("torch._utils", "_rebuild_tensor_v2"),
    "storage type": op_global("torch", "FloatStorage"),
    "OrderedDict class": op_global("collections", "OrderedDict"),
    "set function": op_global("builtins", "set"),
    "dtype function": op_global("numpy", "dtype"),
    "dict": b"}", "list": b"]", "tuple": b")", "string": op_str("x"), "int": op_int(3), "None": b"N",
    "bytes": op_global("_codecs", "encode") + op_tuple(op_str("ab"), op_str("latin1")) + b"R",
    "set": op_global("builtins", "set") + op_tuple(b"]") + b"R",
    "frozenset": op_global("builtins", "frozenset") + op_tuple(b"]") + b"R",
}


@pytest.mark.parametrize("state", [b"}" + op_str("numel") + op_int(99) + b"s",
                                   op_tuple(b"N", b"}" + op_str("numel") + op_int(99) + b"s")],
                         ids=["dict state", "slot state"])
@pytest.mark.parametrize("target", sorted(BUILD_TARGETS))
def test_build_is_refused_on_every_object_the_pickle_makes(target, state):
    pickled = b"\x80\x02" + BUILD_TARGETS[target] + state + b"b" + b"."
    with pytest.raises(CheckpointError, match="tries to set the state|malformed pickle"):
        read_checkpoint(archive(pickled, {"0": SIX}))
    np.testing.assert_array_equal(read_checkpoint(state_archive())["w"].ravel(), np.arange(6))  # stand-ins intact


def test_layout_is_checked_again_against_the_bytes_read():
    """Defence in depth: a tensor record that claims more elements than its member holds never reaches
    as_strided, whatever the record says."""
    data = state_archive()
    arch = checkpoint._Archive(io.BytesIO(data), len(data))
    stype = checkpoint._ALLOWED[("torch", "FloatStorage")]
    big = checkpoint._Storage("0", stype, 2**40)
    tensor = checkpoint._Tensor(big, 0, (5, 3), (2**30, 1), None)
    with pytest.raises(CheckpointError, match=r"reads element 4294967298 of storage '0', which has only 6"):
        checkpoint._materialise(tensor, arch, "<", {})


@pytest.mark.parametrize("opcodes", [
    b"})" + b"\x85" * 300000 + op_str("x") + b"s",  # the 300 KB file: a C stack overflow before
    b"})" + b"\x85" * 20000 + op_str("x") + b"s",  # RecursionError before
    b"}" + b"(" * 5000 + b"t" * 5000 + op_str("x") + b"s",  # nested MARK ... TUPLE
    b"]" * 5000 + b"a" * 4999,  # nested lists
    b"}" + b"".join(op_str("k") + b"}" for _ in range(4999)) + b"s" * 4999,  # nested dicts
], ids=["300k TUPLE1", "20k TUPLE1", "MARK TUPLE", "lists", "dicts"])
def test_deep_nesting_is_refused_in_the_prescan(opcodes, tmp_path):
    result = in_subprocess(archive(b"\x80\x02" + opcodes + b".", {"0": SIX}), tmp_path)
    assert result.returncode == 0 and "refused: the pickle nests containers 1001 deep" in result.stdout, \
        (result.returncode, result.stdout, result.stderr[-2000:])


def test_lists_deepened_through_the_memo_are_harmless():
    """A list chain deepened in place through memo references (GET list i-1, append a new list i, POP) is
    1200 deep although no tuple is: nothing recurses through lists unguarded (they cannot be hashed), and
    messages about them are bounded."""
    chain = b"]" + b"\x94"  # list 0, memoised
    for i in range(1, 1200):
        chain += op_get(i - 1) + b"]" + b"\x94" + b"a0"  # list i-1 gets list i (memoised), then is popped
    deep = chain + b"0" + op_get(0)
    with pytest.raises(CheckpointError, match=r"found list"):
        read_checkpoint(archive(b"\x80\x04" + deep + b".", {"0": SIX}))
    as_size = op_global("torch._utils", "_rebuild_tensor_v2") + op_tuple(
        op_storage_pid() + b"Q", op_int(0), deep, b")", b"\x89", b"}") + b"R"
    with pytest.raises(CheckpointError, match=r"malformed layout: size \[\[\[\[\.\.\.\]\]\]\], stride \(\)"):
        read_checkpoint(archive(b"\x80\x04" + op_dict({"w": as_size}) + b".", {"0": SIX}))
    frozen = op_global("builtins", "frozenset") + op_tuple(deep) + b"R"  # hashing the items stops at a list
    with pytest.raises(CheckpointError, match="unhashable type: 'list'"):
        read_checkpoint(archive(b"\x80\x04" + frozen + b".", {"0": SIX}))


def op_get(i: int) -> bytes:
    return b"h" + bytes([i]) if i < 256 else b"j" + struct.pack("<I", i)


def test_nesting_up_to_the_cap_is_read():
    at_cap = b"})" + b"\x85" * (checkpoint.MAX_DEPTH - 2) + op_str("x") + b"s"  # dict of a key 999 deep
    with pytest.raises(CheckpointError, match=r"no 'state_dict' entry .*top-level keys: \(\(\(\(\.\.\.\),\),\),\)\)"):
        read_checkpoint(archive(b"\x80\x02" + at_cap + b".", {"0": SIX}))
    over = b"})" + b"\x85" * (checkpoint.MAX_DEPTH - 1) + op_str("x") + b"s"
    with pytest.raises(CheckpointError, match="nests containers 1001 deep"):
        read_checkpoint(archive(b"\x80\x02" + over + b".", {"0": SIX}))


HUGE = 7 ** 20000  # 16900 digits: str() refuses it (ValueError) beyond 4300


@pytest.mark.parametrize("pickled, message", [
    (op_dict({"state_dict": b"}" + op_int(HUGE) + op_tensor() + b"s"}),
     r"non-string key <a 56148-bit integer>"),
    (b"}" + op_int(HUGE) + op_int(1) + b"s", r"top-level keys: <a 56148-bit integer>"),
    (op_dict({"w": op_tensor(offset=op_int(HUGE), size=(1,), stride=(1,))}),
     r"at offset <a 56148-bit integer> spans more than"),
    (op_dict({"w": op_tensor(pid=op_tuple(op_str("storage"), op_global("torch", "FloatStorage"), op_str("0"),
                                          op_str("cpu"), op_int(HUGE)))}),
     r"declares <a 56148-bit integer> elements of torch.FloatStorage, over the"),
    (op_dict({"w": op_tensor(size=(1,) * 65, stride=(1,) * 65)}), "65 dims, over the cap of 64"),
])
def test_huge_integers_and_dims_are_checkpoint_errors(pickled, message):
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(archive(b"\x80\x02" + pickled + b".", {"0": SIX}))


def test_huge_integer_fields_are_dropped_not_fatal():
    pickled = b"\x80\x02" + op_dict({"epoch": op_int(HUGE), "best": op_int(4),
                                     "state_dict": op_dict({"w": op_tensor()})}) + b"."
    assert load_checkpoint(archive(pickled, {"0": SIX})).fields == {"best": 4}


# --- fuzzing the reader with the opcodes of the issue-11 attacks ----------------------------------------
# MSF_FUZZ_EXAMPLES raises the example count for a long run, e.g. (one core, ~10 minutes):
#   MSF_FUZZ_EXAMPLES=150000 taskset -c 1 python -m pytest -q tests/test_checkpoint.py -k fuzz -s

FUZZ_EXAMPLES = int(os.environ.get("MSF_FUZZ_EXAMPLES", "300"))
BIG = [2**30, 2**31, 2**31 + 1, 2**32, 2**40, 2**62, 2**63 - 1, 2**63, 2**64, 2**70, HUGE, -1, -2**63]
layout_int = st.one_of(st.integers(0, 8), st.integers(0, 100), st.sampled_from(BIG))
ATTRS = ["numel", "key", "type", "size", "stride", "offset", "storage", "negated", "fn", "dtype", "__dict__",
         "__class__", "_metadata"]
DEPTHS = [1, 2, 3, 500, 997, 998, 999, 1000, 1001, 1002, 5000, 100000]
STACK_OPS = [b"0", b"1", b"2", b"(", b"t", b"s", b"u", b"a", b"e", b"R", b"Q", b"b", b"\x94", b"\x85", b"\x86",
             b"\x87", b"\x90", b"\x91", b"N", b"}", b"]", b")", b"\x81", b"\x8f", b"h\x00", b"h\x05",
             b"j\xff\xff\xff\x7f"]


@st.composite
def gadgets(draw) -> bytes:
    """A few opcodes from the attacks: BUILD with dict or slot state, nesting runs, stack and memo
    opcodes, huge integers, allowlisted globals, raw bytes."""
    kind = draw(st.sampled_from(["build", "nest", "stack", "value", "bytes"]))
    if kind == "build":
        state = b"}" + op_str(draw(st.sampled_from(ATTRS))) + draw(st.sampled_from(
            [op_int(v) for v in BIG] + [op_int(6), b"N", b")", op_tuple(op_int(5), op_int(3)),
                                        op_global("torch", "DoubleStorage")])) + b"s"
        return (op_tuple(b"N", state) if draw(st.booleans()) else state) + b"b"
    if kind == "nest":
        n = draw(st.sampled_from(DEPTHS) | st.integers(0, 1200))
        run = draw(st.sampled_from([b")" + b"\x85" * n, b"(" * n + b"t" * n, b"]" * n + b"a" * max(n - 1, 0),
                                    b"(" * n + b"\x91" + b"\x85" * n, b"}" + (op_str("k") + b"}") * n + b"s" * n]))
        # as it is, as a dict key (a pair inside SETITEMS, or SETITEM), or dropped
        return run + draw(st.sampled_from([b"", b"0", op_str("x"), op_str("x") + b"s"]))
    if kind == "stack":
        return b"".join(draw(st.lists(st.sampled_from(STACK_OPS), min_size=1, max_size=6)))
    if kind == "value":
        return draw(st.sampled_from([op_int(v) for v in BIG] + [
            op_global("torch", "FloatStorage"), op_global("torch._utils", "_rebuild_tensor_v2"),
            op_global("collections", "OrderedDict"), op_global("builtins", "frozenset"), op_storage_pid() + b"Q",
            op_storage_pid(numel=2**40) + b"Q", op_tensor()]))
    return draw(st.binary(min_size=1, max_size=4))


@st.composite
def fuzzed_checkpoints(draw) -> tuple[bytes, dict]:
    """(archive, {name: (offset, size, stride)} as drawn): a trainer checkpoint of two tensors of drawn
    layouts over one 6-float storage, with gadgets inserted between any two of its opcodes."""
    layouts = {}
    for name in ("w", "v"):
        n = draw(st.sampled_from([0, 1, 2, 3, 65]))
        size = tuple(draw(st.lists(layout_int, min_size=n, max_size=n)))
        stride = tuple(draw(st.lists(layout_int, min_size=n, max_size=n + draw(st.sampled_from([0, 0, 0, 1])))))
        layouts[name] = (draw(layout_int), size, stride)
    pickled = b"\x80\x02" + op_dict({"epoch": op_int(3), "state_dict": op_dict({
        name: op_tensor(offset=o, size=sz, stride=sd, numel=draw(st.sampled_from([6, 6, 6, 0, 7, 2**40])))
        for name, (o, sz, sd) in layouts.items()})}) + b"."
    cuts = [pos for _, _, pos in pickletools.genops(pickled)][1:]  # after PROTO, up to STOP
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.sampled_from(cuts))
        gadget = draw(gadgets())
        pickled = pickled[:at] + gadget + pickled[at:]
        cuts = [c if c <= at else c + len(gadget) for c in cuts]
    return archive(pickled, {"0": SIX}), layouts


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=fuzzed_checkpoints())
def test_fuzz_build_nesting_and_layouts(case):
    """Any mix of BUILD, nesting, stack opcodes and layouts either reads or raises CheckpointError; never
    another exception or a crash. What it reads holds only values the storage holds (0..5: no stray heap
    bytes), and a tensor named as drawn is exactly the drawn view of the storage."""
    data, layouts = case
    try:
        state = read_checkpoint(data)
    except CheckpointError:
        return
    storage = np.arange(6, dtype=np.float32)
    for name, array in state.items():
        assert array.dtype == np.float32 and set(np.abs(array).ravel().tolist()) <= set(range(6)), (name, array)
        if name in layouts and array.shape == layouts[name][1] and array.size:  # ndindex tuples each dim's range
            offset, size, stride = layouts[name]
            index = [offset + sum(i * s for i, s in zip(idx, stride)) for idx in np.ndindex(*size)]
            assert max(index, default=0) < 6 and np.array_equal(np.abs(array).ravel(), storage[index]), name


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/null"), reason="needs POSIX")
def test_fifos_and_devices_are_refused_without_waiting(tmp_path):
    """Opening a FIFO waited for a writer, and /dev/zero would be read without end: what is not a regular file
    is refused before it is read (/dev/null: a device that ends)."""
    from test_weights import fifo
    with fifo(tmp_path, "fifo.pth") as path:
        for source in (path, "/dev/null", tmp_path):
            with pytest.raises(CheckpointError, match=f"cannot read checkpoint '{source}': not a regular file"):
                load_checkpoint(source)
