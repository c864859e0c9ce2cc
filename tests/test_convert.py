"""Checkpoint conversion (msf.convert) and pose conventions (msf.pose).

The contract: an official checkpoint converted without torch loads with Refiner.load and reproduces the
official (torch, float64) model within MODEL_ATOL_OF_MAX x max |output|.
"""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import msf
from helpers import CONVERT_WEIGHTS, OFFICIAL, TOOLS, official_config, op_int, random_state_dict, torchless_checkpoint
from msf import checkpoint, pose, weights
from msf.checkpoint import CheckpointError
from msf.convert import convert
from msf.errors import InputError, WeightsError
from tolerances import MODEL_ATOL_OF_MAX, assert_close

NO_TORCH = "import sys; sys.modules['torch'] = None\n"  # `import torch` now raises ImportError


def save_trainer_checkpoint(torch, model, path, *, parallel=False):
    """What the official trainer writes: epoch, state_dict (DataParallel-prefixed when trained on GPUs),
    performance and the optimizer state after a step."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    q1, p = model.l_interp.weight.shape[1], model.encoder_emb.weight.shape[1]
    model.train()
    model.forward_keyframes(torch.randn(2, q1, p, dtype=model.fc.weight.dtype)).abs().mean().backward()
    opt.step()
    model.eval()
    state = torch.nn.DataParallel(model).state_dict() if parallel else model.state_dict()
    torch.save({"epoch": 12, "state_dict": state, "performance": 48.5, "optimizer": opt.state_dict()}, path)


# name: (official config, (reduce_token, reduce_channel), parameter dtype, saved through nn.DataParallel)
VARIANTS = {**{name: (name, (4, 1), "float64", False) for name in OFFICIAL},
            "h36m_rt1": ("h36m", (1, 1), "float64", False), "aist_rt1_rc8": ("aist", (1, 8), "float64", False),
            "pw3d_parallel": ("pw3d", (4, 1), "float64", True), "jhmdb_float32": ("jhmdb", (4, 1), "float32", False)}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def official_checkpoint(request, torch, tmp_path_factory):
    """(variant, torch model in float64, checkpoint path, config)."""
    from torch_model import random_model
    name = request.param
    base, reduce, dtype, parallel = VARIANTS[name]
    model = random_model(*OFFICIAL[base], *reduce, seed=len(name), dtype=getattr(torch, dtype))
    path = tmp_path_factory.mktemp("ckpt") / f"{name}.pth.tar"
    save_trainer_checkpoint(torch, model, path, parallel=parallel)
    return name, model.double(), path, official_config(*OFFICIAL[base], *reduce)


def test_converted_official_checkpoint_reproduces_the_torch_model(official_checkpoint, backend, tmp_path, torch):
    name, model, path, config = official_checkpoint
    out = tmp_path / "model.safetensors"
    convert(path, out)
    refiner = msf.Refiner.load(out, backend=backend)
    assert refiner.config == config
    frames = torch.from_numpy(np.random.default_rng(1).standard_normal((6, config.T, config.P)) * 100)
    with torch.no_grad():
        expected = model(frames).numpy()
    assert_close(refiner.refine(frames.numpy()[:, ::config.K]), expected, atol_of_max=MODEL_ATOL_OF_MAX,
                 what=f"converted {name} ({backend}) vs torch")


def test_file_holds_the_checkpoint_weights_and_metadata(official_checkpoint, torch, tmp_path):
    name, _, path, config = official_checkpoint
    out = tmp_path / "model.safetensors"
    convert(path, out, source="unit test")
    loaded = weights.read(out)
    state = {k.removeprefix("module."): v for k, v in
             torch.load(path, weights_only=True)["state_dict"].items()}
    assert list(loaded.tensors) == list(config.expected_shapes())  # unused value_reduce dropped
    for k, v in loaded.tensors.items():
        assert v.tobytes() == state[k].float().numpy().tobytes(), k
    meta = loaded.metadata
    assert (meta["format"], meta["format_version"]) == ("msf", "1")
    assert meta["config"] == config.to_json()
    assert json.loads(meta["pose"]) == pose.convention(config.P)
    source = json.loads(meta["source"])
    assert source["checkpoint"] == path.name and source["bytes"] == path.stat().st_size
    assert source["fields"] == {"epoch": 12, "performance": 48.5} and source["description"] == "unit test"
    assert len(source["sha256"]) == 64


def run_without_torch(code: str, *args: str) -> subprocess.CompletedProcess:
    script = NO_TORCH + code + "\nassert sys.modules['torch'] is None, 'torch got imported'\n"
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300)


def test_conversion_without_torch_is_bit_identical(official_checkpoint, torch, tmp_path):
    _, _, path, _ = official_checkpoint
    here, there, tool = (tmp_path / f"{name}.safetensors" for name in ("here", "there", "tool"))
    convert(path, here)
    result = run_without_torch("from msf.convert import convert; convert(sys.argv[1], sys.argv[2])",
                               str(path), str(there))
    assert result.returncode == 0, result.stderr
    assert there.read_bytes() == here.read_bytes()
    result = run_without_torch(f"import runpy; sys.argv = [{str(CONVERT_WEIGHTS)!r}] + sys.argv[1:]\n"
                               f"try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
                               f"except SystemExit as e:\n    assert not e.code, e.code",
                               str(path), "-o", str(tool))
    assert result.returncode == 0, result.stderr
    assert tool.read_bytes() == here.read_bytes()
    # and every tensor is torch's own float32 rounding of the checkpoint's parameter
    state = torch.load(path, weights_only=True)["state_dict"]
    for k, v in weights.read(there).tensors.items():
        assert v.tobytes() == state.get(k, state.get("module." + k)).float().numpy().tobytes(), k


def test_legacy_checkpoint_needs_torch(torch, tmp_path):
    from torch_model import random_model
    model = random_model(*OFFICIAL["pw3d"])
    legacy = tmp_path / "legacy.pth.tar"
    torch.save({"epoch": 3, "state_dict": model.state_dict()}, legacy, _use_new_zipfile_serialization=False)
    out = tmp_path / "out.safetensors"
    result = run_without_torch("from msf.cli import main\nsys.exit(main(['convert', *sys.argv[1:]]))",
                               str(legacy), "-o", str(out))
    assert result.returncode == 1 and not out.exists()
    assert "legacy (pre-1.6) torch.save format: re-save it with torch>=1.6" in result.stderr
    with pytest.raises(msf.checkpoint.LegacyFormatError):  # the package never imports torch, even when present
        convert(legacy, out)
    result = subprocess.run([sys.executable, str(CONVERT_WEIGHTS), str(legacy), "-o", str(out)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr  # torch installed: the tool re-saves it first
    for k, v in weights.read(out).tensors.items():
        assert v.tobytes() == model.state_dict()[k].float().numpy().tobytes()
    assert json.loads(weights.read(out).metadata["source"])["fields"] == {"epoch": 3}


@pytest.mark.parametrize("keep", [40, 0.5])
def test_truncated_legacy_checkpoint_is_a_checkpoint_error_naming_the_file(torch, tmp_path, keep):
    """issue 11, item 9: tools/convert_weights.py let torch.load's EOFError (or RuntimeError) out raw."""
    from torch_model import random_model
    legacy = tmp_path / "legacy.pth.tar"
    torch.save({"epoch": 3, "state_dict": random_model(*OFFICIAL["pw3d"]).state_dict()}, legacy,
               _use_new_zipfile_serialization=False)
    data = legacy.read_bytes()
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(data[:keep if isinstance(keep, int) else int(len(data) * keep)])
    out = tmp_path / "out.safetensors"
    result = subprocess.run([sys.executable, str(CONVERT_WEIGHTS), str(truncated), "-o", str(out)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1 and not out.exists(), result
    assert "Traceback" not in result.stderr, result.stderr
    assert f"msf convert: error: {truncated}: legacy (pre-1.6) torch.save format, and torch.load cannot read it " \
           f"(truncated or corrupted?)" in result.stderr, result.stderr
    sys.path.insert(0, str(TOOLS))
    try:
        import convert_weights
    finally:
        sys.path.remove(str(TOOLS))
    with pytest.raises(CheckpointError, match="truncated.pth.tar: legacy"):
        convert_weights.resave_legacy(truncated, str(tmp_path))
    with pytest.raises(msf.checkpoint.LegacyFormatError, match="truncated.pth.tar: legacy"):  # msf convert itself
        convert(truncated, out)


def test_bare_state_dict_with_module_prefix_without_torch(tmp_path, backend):
    config = official_config(*OFFICIAL["jhmdb"])
    state = random_state_dict(config, seed=2)
    data = torchless_checkpoint({"module." + k: v for k, v in state.items()}, epoch=op_int(5))
    out = tmp_path / "m.safetensors"
    model = convert(data, out)
    assert model.config == config and model.pose["skeleton"] == "jhmdb15"
    keyframes = np.random.default_rng(3).standard_normal((4, config.n_keyframes, config.P))
    expected = msf.Refiner(msf.Model.from_tensors(state), "numpy").refine(keyframes)
    np.testing.assert_array_equal(msf.Refiner.load(out, "numpy").refine(keyframes), expected)
    source = json.loads(msf.Refiner.load(out).metadata["source"])
    assert source["checkpoint"] == "<bytes>" and source["fields"] == {"epoch": 5}


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.pop("fc.bias"), r"missing tensors: fc\.bias"),
    (lambda s: s.pop("encoder.layers.3.norm2.weight"), r"missing tensors: encoder\.layers\.3\.norm2\.weight"),
    (lambda s: s.update({"extra.weight": np.zeros((2, 2))}), r"unexpected tensors: extra\.weight"),
    (lambda s: s.update({"fc.weight": np.zeros((50, 64))}), r"fc\.weight: \[50, 64\] \(expected \[51, 64\]\)"),
    (lambda s: s.update({"encoder.layers.1.ff.fc1.weight": np.zeros((96, 64))}),
     "disagree with the inferred config"),
    (lambda s: s.pop("l_interp.weight"), "missing tensor 'l_interp.weight'"),
    (lambda s: s.update({"norm.weight": np.full(64, np.inf)}), "NaN or infinite"),
])
def test_inconsistent_state_dicts_refused_and_nothing_written(h36m_state, tmp_path, edit, message):
    edit(h36m_state)
    out = tmp_path / "m.safetensors"
    with pytest.raises(WeightsError, match=message):
        convert(torchless_checkpoint(h36m_state), out)
    assert os.listdir(tmp_path) == []  # no output and no temporary file left behind


def test_refusals_name_the_file(tmp_path):
    bad = tmp_path / "bad.pth.tar"
    bad.write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(CheckpointError, match=r"bad\.pth\.tar: a bare pickle"):
        convert(bad, tmp_path / "out.safetensors")
    with pytest.raises(CheckpointError, match=r"missing\.pth: cannot read checkpoint"):
        convert(tmp_path / "missing.pth", tmp_path / "out.safetensors")


def test_output_may_not_overwrite_the_checkpoint(h36m_state, tmp_path):
    path = tmp_path / "ck.pth.tar"
    path.write_bytes(torchless_checkpoint(h36m_state))
    with pytest.raises(InputError, match="is the checkpoint itself"):
        convert(path, path)
    assert path.read_bytes() == torchless_checkpoint(h36m_state)


def test_existing_output_is_replaced(h36m_state, tmp_path):
    out = tmp_path / "m.safetensors"
    out.write_bytes(b"old")
    convert(torchless_checkpoint(h36m_state), out)
    assert msf.Refiner.load(out).config.P == 51 and sorted(os.listdir(tmp_path)) == ["m.safetensors"]
    umask = os.umask(0o22)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not a private temporary one


def test_pose_options_reach_the_file(tmp_path):
    state = random_state_dict(official_config(10, 5, 48, 32, 2), seed=5)
    data = torchless_checkpoint(state)
    with pytest.raises(InputError, match="P = 48 is not an official configuration.*pass skeleton .*and, for "
                                         "generic, dims; on the command line --skeleton and --dims$"):
        convert(data, tmp_path / "a.safetensors")
    model = convert(data, tmp_path / "a.safetensors", skeleton="generic", dims=3, root_joints=[0])
    assert model.pose_shape == (16, 3) and model.pose["root_joints"] == [0]
    assert msf.Refiner.load(tmp_path / "a.safetensors").refine(np.zeros((6, 16, 3))).shape == (51, 16, 3)


# --- pose conventions ----------------------------------------------------------------------------------

def test_official_pose_defaults():
    h36m = pose.convention(51)
    assert h36m == {"skeleton": "h36m17", "joints": list(pose.SKELETONS["h36m17"].joints),
                    "parents": [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15], "dims": 3, "units": "mm",
                    "root_relative": True, "root_joints": [0], "image_normalised": False}
    assert h36m["joints"][:4] == ["pelvis", "right_hip", "right_knee", "right_ankle"]
    assert h36m["joints"][-1] == "right_wrist" and len(h36m["joints"]) == 17
    jhmdb = pose.convention(30)
    assert (jhmdb["skeleton"], jhmdb["dims"], jhmdb["units"], jhmdb["image_normalised"], jhmdb["root_relative"]) \
        == ("jhmdb15", 2, "normalised", True, False)
    lsp = pose.convention(42)
    assert (lsp["skeleton"], lsp["dims"], lsp["units"], lsp["root_joints"]) == ("lsp14", 3, "mm", [2, 3])
    assert [lsp["joints"][j] for j in lsp["root_joints"]] == ["right_hip", "left_hip"]
    smpl = pose.convention(144)
    assert (smpl["skeleton"], len(smpl["joints"]), smpl["dims"], smpl["units"], smpl["root_relative"]) \
        == ("smpl24-6d", 24, 6, "6d", False)


@pytest.mark.parametrize("name", [n for n, s in pose.SKELETONS.items() if s.parents is not None])
def test_skeleton_tables_are_trees(name):
    s = pose.SKELETONS[name]
    assert len(set(s.joints)) == len(s.joints) and len(s.parents) == len(s.joints)
    assert s.parents.count(-1) == 1
    for j in range(len(s.joints)):  # every joint reaches the root without a cycle
        seen = set()
        while j != -1:
            assert j not in seen and 0 <= j < len(s.joints)
            seen.add(j)
            j = s.parents[j]


@pytest.mark.parametrize("P, options, expected", [
    (51, dict(units="m"), {"units": "m", "root_joints": [0]}),
    (51, dict(root_joints=[]), {"root_relative": False, "root_joints": []}),
    (51, dict(root_joints=["left_hip", "right_hip"]), {"root_joints": [4, 1]}),
    (42, dict(skeleton="pw3d14", root_joints=["12"]), {"skeleton": "lsp14", "root_joints": [12]}),
    (34, dict(skeleton="h36m17"), {"dims": 2, "units": "px", "image_normalised": False, "root_relative": False}),
    (34, dict(skeleton="h36m17", image_normalised=True), {"units": "normalised", "image_normalised": True}),
    (30, dict(units="px"), {"units": "px", "image_normalised": False}),
    (30, dict(image_normalised=False), {"units": "px"}),
    (45, dict(skeleton="jhmdb15"), {"dims": 3, "units": "mm", "root_relative": False}),
    (20, dict(skeleton="generic", dims=2), {"joints": [f"joint_{j}" for j in range(10)], "units": "px"}),
])
def test_pose_options(P, options, expected):
    got = pose.convention(P, **options)
    assert {k: got[k] for k in expected} == expected
    assert len(got["joints"]) * got["dims"] == P


@pytest.mark.parametrize("P, options, message", [
    (48, {}, "P = 48 is not an official configuration"),
    (48, dict(skeleton="generic"), r"needs dims \(--dims on the command line\)"),
    (48, dict(skeleton="generic", dims=5), r"^dims=5 \(--dims 5 on the command line\) does not divide"),
    (30, dict(skeleton="h36m17"), r"17 joints, which does not divide P = 30 .*choose another skeleton, one of "
                                  r"h36m17, .* \(--skeleton on the command line\)$"),
    (51, dict(dims=2), r"^dims=2 \(--dims 2 on the command line\) disagrees with P = 51 = 17 joints"),
    (51, dict(skeleton="coco"), "unknown skeleton 'coco'"),
    (51, dict(units="px"), "units 'px' do not fit 3D values: choose mm or m"),
    (51, dict(image_normalised=True), "2D poses only"),
    (30, dict(units="px", image_normalised=True), r"contradict image_normalised=True \(--image-normalised on "),
    (30, dict(units="normalised", image_normalised=False), r"image_normalised=False \(--no-image-normalised on "),
    (51, dict(root_joints=[17]), "index 17 is out of range for 17 joints"),
    (51, dict(root_joints=["hips"]), "root joint 'hips' is not a joint"),
    (51, dict(root_joints=[0, "pelvis"]), "repeat a joint"),
])
def test_pose_option_errors(P, options, message):
    with pytest.raises(InputError, match=message):
        pose.convention(P, **options)


def test_pose_summary():
    assert pose.summary(pose.convention(51)) == "h36m17: 17 joints x 3D, mm, root-relative at pelvis"
    assert pose.summary(pose.convention(42)) == \
        "lsp14: 14 joints x 3D, mm, root-relative at the mean of right_hip and left_hip"
    assert pose.summary(pose.convention(30)) == \
        "jhmdb15: 15 joints x 2D, normalised, divided by the image (width, height)"
    assert pose.summary({}) == "not stated in the file"


# --- safetensors package round trip --------------------------------------------------------------------

def test_files_we_write_load_in_safetensors(h36m_state, tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open
    out = tmp_path / "m.safetensors"
    model = convert(torchless_checkpoint(h36m_state), out)
    theirs = st.load_file(str(out))
    assert list(theirs) == list(model.tensors)
    for k, v in theirs.items():
        assert v.dtype == np.float32 and v.tobytes() == model.tensors[k].tobytes()
    with safe_open(str(out), framework="numpy") as f:
        assert f.metadata() == dict(model.metadata)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_files_safetensors_writes_load_here(h36m_state, tmp_path, dtype, backend):
    st = pytest.importorskip("safetensors.numpy")
    ours = tmp_path / "ours.safetensors"
    model = convert(torchless_checkpoint(h36m_state), ours)
    theirs = tmp_path / "theirs.safetensors"
    st.save_file({k: v.astype(dtype) for k, v in model.tensors.items()}, str(theirs),
                 metadata=dict(model.metadata))
    a, b = msf.Refiner.load(ours, backend), msf.Refiner.load(theirs, backend)
    assert b.pose == a.pose and b.config == a.config
    keyframes = np.random.default_rng(6).standard_normal((3, 11, 17, 3))
    np.testing.assert_array_equal(b.refine(keyframes), a.refine(keyframes))


def test_detector_layouts_are_skeletons_without_a_tree():
    import msf.layouts
    for name in ("coco17", "halpe26", "body25", "blazepose33"):
        s = pose.SKELETONS[name]
        assert s.joints == msf.layouts.get(name).joints and s.parents is None and s.root_joints == ()


def test_non_finite_weights_are_refused_naming_the_checkpoint(tmp_path):
    state = random_state_dict(official_config(*OFFICIAL["pw3d"]))
    state["fc.bias"] = state["fc.bias"].copy()
    state["fc.bias"][0] = np.nan
    path = tmp_path / "nan.pth"
    path.write_bytes(torchless_checkpoint(state))
    with pytest.raises(WeightsError, match=rf"^{path}: tensor 'fc.bias' contains NaN"):
        convert(path, tmp_path / "out.safetensors")


def test_output_symlinks_are_written_through_and_other_files_refused(tmp_path):
    """The new file was renamed over the output path: over a symlink it replaced the link, and as root over
    /dev/full it replaced the device node. A link is now written through, and what is not a regular file refused."""
    data = torchless_checkpoint(random_state_dict(official_config(*OFFICIAL["pw3d"])))
    target, link = tmp_path / "target.safetensors", tmp_path / "link.safetensors"
    target.write_bytes(b"old")
    link.symlink_to(target.name)
    convert(data, link)
    assert link.is_symlink() and msf.Refiner.load(target).config == official_config(*OFFICIAL["pw3d"])
    dangling = tmp_path / "dangling.safetensors"
    dangling.symlink_to("new.safetensors")
    convert(data, dangling)
    assert dangling.is_symlink() and (tmp_path / "new.safetensors").is_file()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for output in (fifo, tmp_path):  # (a device would do as well, but not in a test that may run unfixed as root)
        with pytest.raises(InputError, match="exists and is not a regular file"):
            convert(data, output)
    assert fifo.exists() and not fifo.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling.safetensors", "fifo", "link.safetensors",
                                                          "new.safetensors", "target.safetensors"]
    path = tmp_path / "ck.pth"
    path.write_bytes(data)
    (tmp_path / "ck-link.safetensors").symlink_to(path.name)
    with pytest.raises(InputError, match="is the checkpoint itself"):
        convert(path, tmp_path / "ck-link.safetensors")


FAKE_TORCH = """
import runpy, sys, types
from pathlib import Path
sys.path.insert(0, {tests!r})
from helpers import OFFICIAL, official_config, random_state_dict, torchless_checkpoint
state = random_state_dict(official_config(*OFFICIAL["pw3d"]))
torch = types.ModuleType("torch")  # torch.load reads the legacy file, torch.save writes the zip format
torch.load = lambda path, **kwargs: state
torch.save = lambda obj, path: Path(path).write_bytes(torchless_checkpoint(obj))
sys.modules["torch"] = torch
sys.argv = [{tool!r}, *sys.argv[1:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_tool_records_the_legacy_files_provenance_not_its_copys(tmp_path):
    """tools/convert_weights.py converted its re-saved copy of a legacy checkpoint, and the provenance gave the
    copy's size and sha256 (with a stand-in for torch: its load and save are not what is tested)."""
    legacy = tmp_path / "legacy.pth.tar"
    legacy.write_bytes(checkpoint.LEGACY_MAGIC + b"a legacy torch.save file")
    out = tmp_path / "out.safetensors"
    script = FAKE_TORCH.format(tests=str(Path(__file__).parent), tool=str(CONVERT_WEIGHTS))
    result = subprocess.run([sys.executable, "-c", script, str(legacy), "-o", str(out)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    source = json.loads(weights.read(out).metadata["source"])
    assert (source["checkpoint"], source["bytes"], source["sha256"]) == (
        legacy.name, legacy.stat().st_size, hashlib.sha256(legacy.read_bytes()).hexdigest())
    assert "re-saved by torch" in source["resaved"]


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/null"), reason="needs POSIX")
def test_converters_refuse_fifos_and_devices_without_waiting(tmp_path):
    """msf convert and tools/convert_weights.py opened a FIFO, which waits for a writer (a timeout here)."""
    fifo = tmp_path / "fifo.pth"
    os.mkfifo(fifo)
    for source in (fifo, "/dev/null"):
        for command in ([sys.executable, "-m", "msf", "convert"], [sys.executable, str(CONVERT_WEIGHTS)]):
            result = subprocess.run([*command, str(source), "-o", str(tmp_path / "out.safetensors")],
                                    capture_output=True, text=True, timeout=120)
            assert result.returncode == 1 and f"cannot read checkpoint '{source}': not a regular file" in \
                result.stderr, result
