"""What `msf info` prints about a weight file or a checkpoint."""
from __future__ import annotations

import json
import os

from . import convert, pose as pose_, predict as predict_, weights
from ._formats import sniff
from .checkpoint import LEGACY_MAGIC
from .config import Config
from .errors import InputError, WeightsError
from .flops import FLOPS_FORMULA, flops_per_window
from .model import Model


def _load_any(path: str | os.PathLike) -> tuple[Model, str]:
    """A weight file, or a checkpoint described as it would convert with the default pose."""
    try:
        with weights.open_regular(path) as f:
            head = f.read(len(LEGACY_MAGIC))
    except OSError as e:
        raise WeightsError(f"cannot read {os.fspath(path)!r}: {e.strerror or e}") from None
    if sniff(head) not in ("zip", "legacy"):  # the first bytes only: a tar is read, and refused, as msf weights
        return Model.from_weights(weights.read(path)), "msf weights"
    state = convert.load(path).state_dict
    config = Config.from_shapes({k: v.shape for k, v in state.items()})
    try:
        pose = pose_.convention(config.P)
    except InputError:
        pose = {}
    model = Model.from_tensors(state, {"pose": json.dumps(pose)} if pose else {})
    return model, "PyTorch checkpoint (not converted; pose: the default `msf convert` would write)"


def describe(path: str | os.PathLike) -> str:
    """What `msf info` prints: kind, config, window, pose, parameter count, FLOPs per window, provenance."""
    model, kind = _load_any(path)
    c = model.config
    params = sum(t.size for t in model.tensors.values())
    flops = flops_per_window(c)
    keyframes = ", ".join(str(c.K * q) for q in range(c.Q + 1)) if c.Q <= 3 else f"0, {c.K}, ..., {c.K * c.Q}"
    lines = [
        f"{os.fspath(path)}: {kind}",
        f"  config       K={c.K} Q={c.Q} P={c.P} C={c.C} L={c.L} ffn_hidden={c.ffn_hidden} d_t={c.d_t} "
        f"d_c={c.d_c} se_t={c.se_t} se_c={c.se_c} reweight_hidden={c.reweight_hidden}",
        f"  window       T = K*Q+1 = {c.T} frames from Q+1 = {c.n_keyframes} keyframes at frames {keyframes}",
        f"  pose         {pose_.summary(model.convention)}",
        f"  parameters   {params:,} (float32, {params * 4 / 1024:.1f} KiB)",
        f"  FLOPs/window {flops:,} ({flops / 1e6:.2f} MFLOP): 2 x the multiply-adds of the matrix products,",
        *("               " + line for line in FLOPS_FORMULA.splitlines()),
    ]
    prediction = predict_.read_prediction(model.metadata, c)
    if prediction is not None:
        lines.insert(3, f"  prediction   {prediction.history_frames} observed frames -> the next "
                        f"{prediction.future_frames} at {prediction.fps:g} fps (Refiner.predict; not a keyframe model)")
    if "source" in model.metadata:
        lines.append(f"  source       {model.metadata['source']}")
    return "\n".join(map(_printable, lines))


def _printable(line: str) -> str:
    """line with its non-printable characters escaped: strings from the file (source, skeleton, units, joint
    names) must not drive the terminal (escape sequences) or forge lines."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in line)
