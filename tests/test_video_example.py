"""examples/video.py on a few frames of a real video with a real detector (MediaPipe Pose).

Runs only where the `video` extra is installed (mediapipe, OpenCV; docs/video.md) and the video is present
(Debian/Ubuntu package opencv-doc); skipped otherwise. mediapipe is never imported by this module: the
example runs in a subprocess of the same interpreter.
"""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT

EXAMPLE = ROOT / "examples" / "video.py"
VIDEO = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def _missing() -> str | None:
    for module in ("mediapipe", "cv2"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (the video extra: pip install '.[video]', see docs/video.md)"
    if not VIDEO.is_file():
        return f"{VIDEO} is absent (apt-get install opencv-doc)"
    return None


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("video")
    done = subprocess.run([sys.executable, str(EXAMPLE), "--frames", "21", "--out-dir", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    return out, done.stdout


def test_outputs(run):
    out, text = run
    assert (out / "video-contact-sheet.png").stat().st_size > 10_000
    poses = np.load(out / "video-poses.npz")
    n = 21
    assert poses["frames"].tolist() == list(range(610, 610 + n))
    assert poses["keyframes"].tolist() == [610, 620, 630]
    J = poses["msf"].shape[1]
    assert poses["msf"].shape == (n, J, 2) and poses["reference"].shape == (n, J, 2)
    assert np.isfinite(poses["msf"]).all()
    # the woman on the grass is found on every keyframe, and msf stays on her (within a third of her height)
    assert np.isfinite(poses["keyframe_poses"]).all(axis=(1, 2)).all()
    ok = poses["reference_scores"] >= 0.3
    d = np.linalg.norm(poses["msf"] - poses["reference"], axis=-1)[ok]
    assert np.median(d) < 40, np.median(d)


def test_report(run):
    _, text = run
    assert re.search(r"detector calls: 3 on keyframes for 21 frames, 18 saved", text), text
    assert re.search(r"detector [\d.]+ ms per call", text) and re.search(r"msf [\d.]+ ms per frame", text), text
    for row in ("msf from keyframes (walker frame)", "linear interpolation (walker frame)",
                "every-frame detector, own jitter"):
        assert re.search(re.escape(row) + r"\s+mean\s+[\d.]+\s+median\s+[\d.]+", text), text
