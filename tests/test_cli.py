"""The `msf` command line (msf.cli): convert and info, errors as one-line messages, and its entry points."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import msf
from helpers import CONVERT_WEIGHTS, OFFICIAL, official_config, random_state_dict, torchless_checkpoint
from msf.cli import main


@pytest.fixture
def checkpoint(tmp_path):
    """An official 3DPW (P = 42) trainer checkpoint, written without torch."""
    path = tmp_path / "checkpoint.pth.tar"
    path.write_bytes(torchless_checkpoint(random_state_dict(official_config(*OFFICIAL["pw3d"]), seed=1)))
    return path


def test_convert_then_info(checkpoint, tmp_path, capsys):
    out = tmp_path / "model.safetensors"
    assert main(["convert", str(checkpoint), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out}\n") and "lsp14: 14 joints x 3D, mm" in printed
    refiner = msf.Refiner.load(out)
    assert refiner.pose["skeleton"] == "lsp14" and refiner.config.P == 42
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "K=10 Q=5 P=42 C=32 L=4" in info and "FLOPs/window" in info and "parameters" in info


def test_pose_options(checkpoint, tmp_path, capsys):
    out = tmp_path / "model.safetensors"
    assert main(["convert", str(checkpoint), "-o", str(out), "--skeleton", "pw3d14", "--units", "m",
                 "--root-joints", "neck", "--description", "trained on 3DPW by us"]) == 0
    refiner = msf.Refiner.load(out)
    assert (refiner.pose["units"], refiner.pose["root_joints"]) == ("m", [12])
    assert "trained on 3DPW by us" in refiner.metadata["source"]
    assert main(["convert", str(checkpoint), "-o", str(out), "--root-joints", "none"]) == 0
    assert msf.Refiner.load(out).pose["root_relative"] is False
    assert main(["convert", str(checkpoint), "-o", str(out), "--skeleton", "generic", "--dims", "3",
                 "--root-joints", "2,3"]) == 0
    assert msf.Refiner.load(out).pose["joints"][0] == "joint_0"


@pytest.mark.parametrize("args, message", [
    (["--skeleton", "h36m17"], "skeleton h36m17 has 17 joints, which does not divide P = 42"),
    (["--image-normalised"], "image normalisation applies to 2D poses only"),
    (["--dims", "2"], "dims=2 (--dims 2 on the command line) disagrees with P = 42"),
])
def test_bad_pose_options_are_one_line_errors(checkpoint, tmp_path, capsys, args, message):
    out = tmp_path / "model.safetensors"
    assert main(["convert", str(checkpoint), "-o", str(out), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("msf convert: error: ") and message in err and "Traceback" not in err
    assert not out.exists()


def test_refused_checkpoint_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint at all")
    assert main(["convert", str(bad), "-o", str(tmp_path / "m.safetensors")]) == 1
    assert "msf convert: error: " in capsys.readouterr().err
    assert main(["info", str(tmp_path / "missing.safetensors")]) == 1
    assert capsys.readouterr().err.startswith("msf info: error: ")


@pytest.mark.parametrize("argv", [[], ["convert", "x.pth"], ["convert", "x", "-o", "y", "--skeleton", "coco"],
                                  ["convert", "x", "-o", "y", "--root-joints", "1,,2"], ["frobnicate"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and "usage: msf" in capsys.readouterr().err


def test_tool_script_and_module_give_the_same_file(checkpoint, tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    assert main(["convert", str(checkpoint), "-o", str(a)]) == 0
    run = subprocess.run([sys.executable, str(CONVERT_WEIGHTS), str(checkpoint), "-o", str(b)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert b.read_bytes() == a.read_bytes()
    run = subprocess.run([sys.executable, "-m", "msf.cli", "info", str(b)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and "lsp14" in run.stdout


def test_console_script(checkpoint, tmp_path):
    exe = shutil.which("msf", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the msf console script is not installed next to this Python")
    run = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == f"msf {msf.__version__}"
    out = tmp_path / "m.safetensors"
    run = subprocess.run([exe, "convert", str(checkpoint), "-o", str(out)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    keyframes = np.zeros((6, 14, 3))
    assert msf.Refiner.load(out).refine(keyframes).shape == (51, 14, 3)


def test_warnings_are_one_line_and_the_default_is_restored(monkeypatch, capsys):
    """Inside the CLI a warning prints as one `msf: warning:` line, without the source line Python's default
    format adds; outside it, Python's own warning display is back."""
    import warnings

    import msf.cli
    before = warnings.showwarning
    monkeypatch.setattr(msf.cli, "describe", lambda path: warnings.warn("two\nlines", RuntimeWarning) or "described")
    assert main(["info", "model.safetensors"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "described\n" and captured.err == "msf: warning: two lines\n"
    assert warnings.showwarning is before


def test_info_takes_shipped_names(capsys):
    import msf
    name = msf.models()[0]
    assert main(["info", name]) == 0
    assert f"{name}.safetensors: msf weights" in capsys.readouterr().out
