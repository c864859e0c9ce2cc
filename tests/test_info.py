"""`msf info`'s description (msf.info) of a weight file and of a checkpoint."""
from helpers import torchless_checkpoint
from msf.convert import convert
from msf.flops import flops_per_window
from msf.info import describe


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
