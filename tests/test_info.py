"""`msf info`'s description (msf.info) of a weight file and of a checkpoint."""
import json
import os

import pytest

from helpers import torchless_checkpoint
from msf.convert import convert
from msf.errors import WeightsError
from msf.flops import flops_per_window
from msf.info import describe
from test_weights import PREDICTION, fifo, prediction_file, tiny_model_file


def test_describe(h36m_state, tmp_path):
    out = tmp_path / "m.safetensors"
    model = convert(torchless_checkpoint(h36m_state), out)
    text = describe(out)
    c = model.config
    assert "K=10 Q=10 P=51 C=64 L=4" in text and "T = K*Q+1 = 101 frames" in text
    assert "h36m17: 17 joints x 3D, mm, root-relative at pelvis" in text
    assert f"parameters   {sum(v.size for v in model.tensors.values()):,}" in text
    assert f"FLOPs/window {flops_per_window(c):,}" in text and "2 [T(Q+1)P + 2TPC" in text
    assert '"sha256"' in text
    ckpt = tmp_path / "ck.pth.tar"
    ckpt.write_bytes(torchless_checkpoint(h36m_state))
    assert "PyTorch checkpoint (not converted" in describe(ckpt) and "h36m17" in describe(ckpt)


def test_strings_from_the_file_are_printed_escaped(tmp_path):
    """The file's source, skeleton, units and joint names went to the terminal as they were: escape sequences
    drove it, and a newline forged lines."""
    pose = {"skeleton": "\x1b[2J\x1b]0;title\x07", "joints": ["a\r", "b"], "dims": 2, "units": "px\u202e",
            "root_relative": True, "root_joints": [0]}
    path = tmp_path / "m.safetensors"
    path.write_bytes(tiny_model_file({"pose": json.dumps(pose), "source": "msf\n  parameters   forged\x1b[31m"}))
    lines = describe(path).splitlines()
    assert all(line.isprintable() for line in lines), lines
    assert sum(line.startswith("  parameters") for line in lines) == 1
    text = "\n".join(lines)
    assert "\\x1b[2J\\x1b]0;title\\x07: 2 joints" in text and "px\\u202e" in text and "at a\\r" in text
    assert "  source       msf\\n  parameters   forged\\x1b[31m" in text


def test_deep_prediction_metadata_is_a_weights_error(tmp_path):
    """json.loads recursed into it: a RecursionError, and `msf info` printed a traceback."""
    path = tmp_path / "m.safetensors"
    path.write_bytes(prediction_file("[" * 100_000))
    with pytest.raises(WeightsError, match=r"metadata 'prediction' nests arrays and objects \d+ deep"):
        describe(path)
    path.write_bytes(prediction_file(PREDICTION))
    assert "prediction   3 observed frames -> the next 2 at 25 fps" in describe(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/null"), reason="needs POSIX")
def test_fifos_devices_and_overlong_names_are_weights_errors(tmp_path):
    """describe opened a FIFO, which waits for a writer, read /dev/zero without end, and let the OSError of a
    name too long out."""
    with fifo(tmp_path) as path:
        for device in (path, "/dev/null"):
            with pytest.raises(WeightsError, match=f"cannot read '{device}': not a regular file"):
                describe(device)
    with pytest.raises(WeightsError, match="cannot read 'xxx.*': File name too long"):
        describe("x" * 5000)
