"""Official PyTorch checkpoints to msf weight files (docs/model.md §2), and the description `msf info` prints."""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Mapping, Sequence

from . import pose as pose_, predict as predict_, weights
from ._formats import sniff
from .checkpoint import LEGACY_MAGIC, Checkpoint, CheckpointError, load_checkpoint
from .config import Config
from .errors import InputError, WeightsError
from .model import FORMAT, FORMAT_VERSION, Model

CheckpointSource = str | os.PathLike | bytes | bytearray | memoryview


def _read(checkpoint: CheckpointSource) -> Checkpoint:
    """Our restricted reader (pre-1.6 files are refused: tools/convert_weights.py re-saves them with torch).
    Errors name the file."""
    try:
        return load_checkpoint(checkpoint)
    except CheckpointError as e:
        raise type(e)(f"{_name(checkpoint)}: {e}") from None


def _name(checkpoint: CheckpointSource) -> str:
    return "<bytes>" if isinstance(checkpoint, (bytes, bytearray, memoryview)) else os.fspath(checkpoint)


def _provenance(checkpoint: CheckpointSource, fields: dict, description: str | None) -> dict:
    from . import __version__  # here, not at import: msf/__init__ may import this module first

    digest, size = hashlib.sha256(), 0
    if isinstance(checkpoint, (bytes, bytearray, memoryview)):
        digest.update(checkpoint)
        size = len(checkpoint)
    else:
        with open(checkpoint, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    # the file's name but not its directory: the output does not depend on where it was converted
    provenance = {"converter": f"msf {__version__} convert", "checkpoint": Path(_name(checkpoint)).name,
                  "bytes": size, "sha256": digest.hexdigest()}
    if fields:
        provenance["fields"] = fields
    if description:
        provenance["description"] = description
    return provenance


def convert(checkpoint: CheckpointSource, output: str | os.PathLike, *, skeleton: str | None = None,
            dims: int | None = None, units: str | None = None, root_joints: Sequence[int | str] | None = None,
            image_normalised: bool | None = None, source: str | None = None,
            prediction: Mapping | None = None) -> Model:
    """Converts a torch.save checkpoint (trainer checkpoint or bare state dict; path or bytes) to an msf
    weight file at `output`, without torch and without executing anything from the checkpoint.

    The config is inferred from the tensor shapes; the pose options are those of msf.pose.convention
    (defaults for the official P). source: a free-text description kept in the provenance metadata.
    prediction: {"history_frames", "future_frames", "fps"} for a motion-prediction model (msf.predict).
    The file is written atomically (a failed conversion leaves nothing at `output`). Returns the Model
    as the file will load. Raises WeightsError (CheckpointError for unreadable checkpoints) or InputError
    for pose options that do not fit the model.
    """
    ckpt = _read(checkpoint)
    if not isinstance(checkpoint, (bytes, bytearray, memoryview)) and os.path.exists(output) \
            and os.path.samefile(checkpoint, output):
        raise InputError(f"output {os.fspath(output)!r} is the checkpoint itself: choose another path")
    try:
        config = Config.from_shapes({k: v.shape for k, v in ckpt.state_dict.items()})
    except WeightsError as e:
        raise WeightsError(f"{_name(checkpoint)}: {e}") from None
    pose = pose_.convention(config.P, skeleton=skeleton, dims=dims, units=units, root_joints=root_joints,
                            image_normalised=image_normalised)
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": config.to_json(),
                "pose": json.dumps(pose), "source": json.dumps(_provenance(checkpoint, ckpt.fields, source))}
    if prediction is not None:
        metadata[predict_.METADATA_KEY] = json.dumps(dict(prediction))
        predict_.read_prediction(metadata, config)  # WeightsError when it does not fit the model
    model = Model.from_tensors(ckpt.state_dict, metadata)  # drops the unused value_reduce tensors
    # written beside the output, then renamed over it: a failure never leaves a partial file there
    out = os.path.abspath(output)
    tmp = os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.{uuid.uuid4().hex}.tmp")
    try:
        weights.write(tmp, model.tensors, metadata)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return model


# flops_per_window in one expression, as `msf info` and benchmarks/speed.py print it (a sum over Config's
# fields; [x] is 1 where x holds, else 0).
FLOPS_FORMULA = ("2 [T(Q+1)P + 2TPC + L (TC d_t (2 + [d_t<T]) + 2T se_t + TC d_c (2 + [d_c<C]) + 2C se_c\n"
                 "+ 3T reweight_hidden + TC^2 + 2TC ffn_hidden)]; element-wise work is not counted")


def flops_per_window(c: Config) -> int:
    """FLOPs of one window's forward: 2 x the multiply-adds of every matrix product (docs/model.md §1).
    Element-wise work (biases, LayerNorm, GELU, softmax, the SE and mixing scalings) is not counted.

        T(Q+1)P  interpolation  +  TPC  embedding  +  TCP  output
        + L x [ T C d_t + 2 T se_t + [d_t < T] C T d_t + T d_t C     token branch: dense, SE, value, A V
              + C T d_c + 2 C se_c + [d_c < C] T C d_c + C d_c T     channel branch
              + 3 T h + T C^2 + 2 T C F ]                            reweight, proj, FFN
    """
    T, Q1, P, C, F, h = c.T, c.n_keyframes, c.P, c.C, c.ffn_hidden, c.reweight_hidden
    token = T * C * c.d_t + 2 * T * c.se_t + (c.d_t < T) * C * T * c.d_t + T * c.d_t * C
    channel = C * T * c.d_c + 2 * C * c.se_c + (c.d_c < C) * T * C * c.d_c + C * c.d_c * T
    block = token + channel + 3 * T * h + T * C * C + 2 * T * C * F
    return 2 * (T * Q1 * P + T * P * C + T * C * P + c.L * block)


def _load_any(path: str | os.PathLike) -> tuple[Model, str]:
    """A weight file, or a checkpoint described as it would convert with the default pose."""
    with open(path, "rb") as f:
        head = f.read(len(LEGACY_MAGIC))
    if sniff(head) not in ("zip", "legacy"):  # the first bytes only: a tar is read, and refused, as msf weights
        return Model.from_weights(weights.read(path)), "msf weights"
    state = _read(path).state_dict
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
    return "\n".join(lines)
