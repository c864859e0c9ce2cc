"""`msf recover` and `msf plot` end to end in a subprocess, on every file format."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import msf
from conftest import OFFICIAL, official_config, random_state_dict

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
    (["--n-frames", 50], "keyframes for 50 frames"),
    (["--image-size", 640, 480], "image_size"),
])
def test_errors_are_one_line_messages(tmp_path, model_path, args, message):
    np.save(tmp_path / "in.npy", keyframes(131))
    result = run_msf("recover", tmp_path / "in.npy", "-o", tmp_path / "out.npy", "--model", model_path, *args)
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr


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
