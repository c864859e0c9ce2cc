"""`msf recover` and `msf plot` end to end in a subprocess, on every file format."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import msf
from helpers import OFFICIAL, official_config, random_state_dict

CONFIG = official_config(*OFFICIAL["pw3d"])  # K=10, 14 joints x 3
POSE = {"skeleton": "lsp14", "joints": [f"j{i}" for i in range(14)], "dims": 3, "units": "mm",
        "root_relative": True, "root_joints": [2, 3], "parents": [1, 2, 12, 12, 3, 4, 7, 8, 12, 12, 9, 10, -1, 12]}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.safetensors"
    msf.weights.write(path, random_state_dict(CONFIG, seed=2), {"format": "msf", "pose": json.dumps(POSE)})
    return path


def run_msf(*args, env=None):
    return subprocess.run([sys.executable, "-m", "msf.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def keyframes(n, seed=0):
    kf = np.random.default_rng(seed).standard_normal((len(msf.keyframe_indices(n, 10)), 14, 3)) * 200 + 900
    kf[1, 4] = np.nan  # a missing joint
    return kf


def test_npy_to_npy_equals_recover(tmp_path, model_path):
    kf = keyframes(131)
    np.save(tmp_path / "in.npy", kf)
    result = run_msf("recover", tmp_path / "in.npy", "-o", tmp_path / "out.npy", "--model", model_path,
                     "--n-frames", 131)
    assert result.returncode == 0, result.stderr
    expected = msf.Refiner.load(model_path).recover(kf, 131)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_npz_many_sequences_and_json(tmp_path, model_path):
    seqs = {"walk": keyframes(101, 1), "jump": keyframes(37, 2)}
    np.savez(tmp_path / "in.npz", walk=seqs["walk"], jump=seqs["jump"], jump_n_frames=np.int64(37))
    result = run_msf("recover", tmp_path / "in.npz", "-o", tmp_path / "out.json", "--model", model_path)
    assert result.returncode == 0, result.stderr
    out = json.loads((tmp_path / "out.json").read_text())["sequences"]
    r = msf.Refiner.load(model_path)
    for name, n in (("walk", 101), ("jump", 37)):
        expected = r.recover(seqs[name], n)
        np.testing.assert_allclose(np.array(out[name]["frames"]), expected, rtol=0,
                                   atol=1e-5 * np.abs(expected).max(), err_msg=name)
    document = {"n_frames": 37, "keyframes": np.where(np.isnan(seqs["jump"]), None, seqs["jump"]).tolist()}
    (tmp_path / "in.json").write_text(json.dumps(document))
    result = run_msf("recover", tmp_path / "in.json", "-o", tmp_path / "out.npz", "--model", model_path)
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "out.npz")["frames"], r.recover(seqs["jump"], 37), rtol=0,
                               atol=1e-3)


@pytest.mark.parametrize("args, message", [
    (["--n-frames", 50], "keyframes for 50 frames (--n-frames)"),
    (["--n-frames", 0], "--n-frames must be >= 1"),
    (["--n-frames", 10**15], "needs 100000000000001"),
    (["--image-size", 640, 480], "--image-size was given, but this model's pose convention has no image"),
    (["--image-size", 0, 480], "--image-size W H must be the image's width and height in pixels"),
    (["--stride", 0], "--stride must be from 1 to Q = 5"),
    (["--stride", 6], "--stride must be from 1 to Q = 5"),
    (["--threads", -1], "--threads must be >= 0"),
])
def test_errors_are_one_line_messages_naming_flags(tmp_path, model_path, args, message):
    np.save(tmp_path / "in.npy", keyframes(131))
    result = run_msf("recover", tmp_path / "in.npy", "-o", tmp_path / "out.npy", "--model", model_path, *args)
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "image_size" not in result.stderr and "n_frames=" not in result.stderr


def test_2d_model_without_image_size_names_the_flag(tmp_path):
    config = official_config(10, 1, 30, 16, 2)
    pose = {"joints": [f"j{i}" for i in range(15)], "dims": 2, "units": "px", "image_normalised": True}
    path = tmp_path / "m2d.safetensors"
    msf.weights.write(path, random_state_dict(config, seed=2), {"format": "msf", "pose": json.dumps(pose)})
    np.save(tmp_path / "in.npy", np.random.default_rng(0).uniform(0, 640, (4, 15, 2)))
    result = run_msf("recover", tmp_path / "in.npy", "-o", tmp_path / "out.npy", "--model", path)
    assert result.returncode == 1 and "pass --image-size W H" in result.stderr
    result = run_msf("recover", tmp_path / "in.npy", "-o", tmp_path / "out.npy", "--model", path, "--image-size",
                     640, 480)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("content, message", [
    (np.float64(3.0), "keyframes must be an array (M, J, D) or (M, P) of numbers"),   # issue 11: TypeError
    (np.zeros((0, 14, 3)), "no keyframes (shape (0, 14, 3))"),                       # was "got -9"
    (np.array(["a", "b"]), "keyframes must be an array"),
    (np.zeros(5), "got shape (5,)"),
])
def test_bad_npy_files_are_one_line_errors(tmp_path, model_path, content, message):
    np.save(tmp_path / "in.npy", content)
    result = run_msf("recover", tmp_path / "in.npy", "-o", tmp_path / "out.npy", "--model", model_path)
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_huge_n_frames_in_files_are_one_line_errors(tmp_path, model_path):
    """issue 11: n_frames = 10**15 in an .npz or .json file printed a MemoryError traceback."""
    kf = keyframes(131)
    np.savez(tmp_path / "in.npz", walk=kf, walk_n_frames=np.int64(10**15))
    document = {"n_frames": 10**15, "keyframes": np.nan_to_num(kf).tolist()}
    (tmp_path / "in.json").write_text(json.dumps(document))
    for name in ("in.npz", "in.json"):
        result = run_msf("recover", tmp_path / name, "-o", tmp_path / "out.npz", "--model", model_path)
        assert result.returncode == 1 and "frames (its n_frames); the model (K = 10) needs 100000000000001" in \
            result.stderr and "Traceback" not in result.stderr, result.stderr
    for bad in (0, True, 2.5, "131"):
        (tmp_path / "bad.json").write_text(json.dumps({**document, "n_frames": bad}))
        result = run_msf("recover", tmp_path / "bad.json", "-o", tmp_path / "out.npz", "--model", model_path)
        assert result.returncode == 1 and "n_frames must be one integer >= 1" in result.stderr


def test_deep_or_odd_json_is_an_input_error(tmp_path, model_path):
    """issue 11: a 100k-deep JSON file raised RecursionError."""
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    result = run_msf("recover", tmp_path / "deep.json", "-o", tmp_path / "out.npy", "--model", model_path)
    assert result.returncode == 1 and "nested deeper than 64 levels" in result.stderr
    assert "Traceback" not in result.stderr
    (tmp_path / "deep.json").write_text("[" * 999 + "]" * 999)  # under the old limit of 1000: RecursionError
    result = run_msf("recover", tmp_path / "deep.json", "-o", tmp_path / "out.npy", "--model", model_path)
    assert result.returncode == 1 and "nested deeper than 64 levels" in result.stderr, result.stderr
    kf = np.nan_to_num(keyframes(131)).tolist()
    odd = json.loads(json.dumps(kf))
    odd[3][2][1] = "900"  # a string is not a number (NumPy would convert it)
    (tmp_path / "str.json").write_text(json.dumps({"n_frames": 131, "keyframes": odd}))
    result = run_msf("recover", tmp_path / "str.json", "-o", tmp_path / "out.npy", "--model", model_path)
    assert result.returncode == 1 and "keyframes must be nested lists of numbers" in result.stderr
    assert "found str" in result.stderr
    kf_bracket_names = {"sequences": {"[" * 2000: {"n_frames": 131, "keyframes": kf}}}
    (tmp_path / "names.json").write_text(json.dumps(kf_bracket_names))  # brackets in strings do not count
    result = run_msf("recover", tmp_path / "names.json", "-o", tmp_path / "out.json", "--model", model_path)
    assert result.returncode == 0, result.stderr


def test_npz_metadata_entries_are_skipped_with_a_warning(tmp_path, model_path):
    """issue 11: a data file with fps, joint_names, ... crashed with `len() of unsized object`."""
    kf = keyframes(131)
    np.savez(tmp_path / "in.npz", fps=np.float32(30), joint_names=np.array([f"j{i}" for i in range(14)]),
             parents=np.arange(14), walk=kf, walk_n_frames=np.int64(131), extra_walk=np.zeros((14, 23, 3)),
             orphan_n_frames=np.int64(5))
    result = run_msf("recover", tmp_path / "in.npz", "-o", tmp_path / "out.npz", "--model", model_path)
    assert result.returncode == 0, result.stderr
    assert list(np.load(tmp_path / "out.npz")) == ["walk"]
    warning_lines = [line for line in result.stderr.splitlines() if line.startswith("msf: warning: ")]
    assert len(warning_lines) == 2, result.stderr
    assert "skipped 4 entries that are not keyframe sequences" in warning_lines[0]
    for name in ("fps (shape ()", "joint_names", "parents (shape (14,)", "orphan_n_frames (no sequence 'orphan')"):
        assert name in warning_lines[0]
    assert "skipped 1 sequences not in this model's pose layout (M, 14, 3): extra_walk (14, 23, 3)" in warning_lines[1]
    np.savez(tmp_path / "none.npz", fps=np.float32(30))
    result = run_msf("recover", tmp_path / "none.npz", "-o", tmp_path / "out.npz", "--model", model_path)
    assert result.returncode == 1 and "no keyframe sequences" in result.stderr


def test_assumed_length_is_warned_and_documented(tmp_path, model_path):
    """issue 11: keyframes of a 278-frame video (last one off the grid) were silently stretched to 281 frames."""
    kf = keyframes(278)
    assert len(kf) == 29
    np.save(tmp_path / "in.npy", kf)
    result = run_msf("recover", tmp_path / "in.npy", "-o", tmp_path / "out.npy", "--model", model_path)
    assert result.returncode == 0 and len(np.load(tmp_path / "out.npy")) == 281
    lines = result.stderr.splitlines()
    assert lines[0].startswith("msf: warning: ") and "29 keyframes -> 281 frames" in lines[0]
    assert "pass --n-frames N" in lines[0] and lines[1].startswith("wrote ") and len(lines) == 2
    result = run_msf("recover", tmp_path / "in.npy", "-o", tmp_path / "out.npy", "--model", model_path,
                     "--n-frames", 278)
    assert result.returncode == 0 and "warning" not in result.stderr and len(np.load(tmp_path / "out.npy")) == 278
    help_text = run_msf("recover", "--help").stdout
    description = help_text.split("\n\n")[1]  # right after the usage lines
    assert description.startswith("Video length: without --n-frames") and "stretched" in description


def test_library_warnings_are_one_line(tmp_path, model_path):
    """Warnings from msf (here: metres given to a millimetre model) print as `msf: warning: ...`, without the
    Python source line the default format shows."""
    np.save(tmp_path / "in.npy", keyframes(131) / 1000)
    result = run_msf("recover", tmp_path / "in.npy", "-o", tmp_path / "out.npy", "--model", model_path,
                     "--n-frames", 131)
    assert result.returncode == 0
    lines = result.stderr.splitlines()
    assert lines[0].startswith("msf: warning: keyframes look like metres") and len(lines) == 2, result.stderr


def test_unknown_format_and_missing_file(tmp_path, model_path):
    result = run_msf("recover", tmp_path / "in.csv", "-o", tmp_path / "o.npy", "--model", model_path)
    assert result.returncode == 1 and ".npy, .npz or .json" in result.stderr
    result = run_msf("recover", tmp_path / "nope.npy", "-o", tmp_path / "o.npy", "--model", model_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_plot_writes_a_real_png(tmp_path, model_path):
    pytest.importorskip("matplotlib")
    np.save(tmp_path / "in.npy", keyframes(131))
    result = run_msf("plot", tmp_path / "in.npy", "-o", tmp_path / "p.png", "--model", model_path, "--n-frames", 131)
    assert result.returncode == 0, result.stderr
    data = (tmp_path / "p.png").read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000  # a drawn figure, not an empty canvas
    import matplotlib.image
    pixels = matplotlib.image.imread(tmp_path / "p.png")
    assert pixels.std() > 0.05  # varied content


def test_plot_without_matplotlib_says_how_to_install(tmp_path, model_path):
    np.save(tmp_path / "in.npy", keyframes(131))
    code = ("import sys; sys.modules['matplotlib'] = None; from msf.cli import main; "
            f"sys.exit(main(['plot', {str(tmp_path / 'in.npy')!r}, '-o', {str(tmp_path / 'p.png')!r}, "
            f"'--model', {str(model_path)!r}, '--n-frames', '131']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1 and 'pip install "msf[plot]"' in result.stderr


def _detector_model() -> str:
    """A shipped 2D model for a COCO file (h36m17-2d converts the keypoints on the way in)."""
    return "coco17-2d" if "coco17-2d" in msf.models() else "h36m17-2d"


def coco_file(path):
    rng = np.random.default_rng(0)
    keypoints = [np.column_stack([500 + 20 * rng.standard_normal((17, 2)), np.full(17, 0.9)]) for _ in range(11)]
    entries = [{"image_id": 10 * i, "category_id": 1, "score": 0.9, "keypoints": kp.ravel().tolist()}
               for i, kp in enumerate(keypoints)]
    path.write_text(json.dumps(entries))
    return path


@pytest.mark.parametrize("args, output, message", [
    (["--n-frames", 10**12], "out.json", "--n-frames must be at most 10000001 (frames 0 to 10000000"),  # MemoryError
    (["--n-frames", 10**8], "out.json", "--n-frames must be at most 10000001"),              # GBs of empty frames
    ([], "out.npy", "out.npy: detections are written back as a detector's JSON (the input's format, or "
                    "--output-format's), not .npy"),                                          # wrote JSON into it
    (["--output-format", "mmpose"], "out.NPZ", "not .npz: name the output .json"),
    (["--min-score", "nan"], "out.json", "--min-score must be a finite number"),              # a warning per person
    (["--min-score", "inf"], "out.json", "--min-score must be a finite number"),
    ([], "missing/out.json", "No such file or directory: '{tmp}/missing'"),                  # named the .tmp file
])
def test_detector_file_errors_are_one_line_messages(tmp_path, args, output, message):
    src = coco_file(tmp_path / "coco.json")
    result = run_msf("recover", src, "-o", tmp_path / output, "--model", _detector_model(), "--image-size", 1920,
                     1080, *args)
    assert result.returncode == 1 and message.format(tmp=tmp_path) in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and ".tmp" not in result.stderr and not (tmp_path / output).exists()


def test_empty_json_sequences_is_an_error_as_in_npz(tmp_path, model_path):
    """{"sequences": {}} wrote an empty output with exit status 0; an .npz without sequences is an error."""
    (tmp_path / "in.json").write_text(json.dumps({"sequences": {}}))
    for command in ("recover", "plot"):
        result = run_msf(command, tmp_path / "in.json", "-o", tmp_path / "out.json", "--model", model_path)
        assert result.returncode == 1 and "in.json: no keyframe sequences" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("joints", ["99", "3,-1"])
def test_plot_joints_out_of_range_name_the_flag(tmp_path, model_path, joints):
    """--joints 99 printed an IndexError traceback from inside the plot."""
    np.save(tmp_path / "in.npy", keyframes(131))
    result = run_msf("plot", tmp_path / "in.npy", "-o", tmp_path / "p.png", "--model", model_path, "--n-frames", 131,
                     "--joints", joints)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"--joints must be joint indices from 0 to 13 (the keyframes have 14 joints), got {joints}" in result.stderr
    assert not (tmp_path / "p.png").exists()


def test_a_missing_output_folder_is_named(tmp_path, model_path):
    """A keyframe output in a missing folder named the hidden temporary folder inside it."""
    np.save(tmp_path / "in.npy", keyframes(131))
    result = run_msf("recover", tmp_path / "in.npy", "-o", tmp_path / "missing" / "out.npy", "--model", model_path)
    assert result.returncode == 1 and f"No such file or directory: '{tmp_path}/missing'" in result.stderr, \
        result.stderr
