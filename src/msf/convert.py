"""Official PyTorch checkpoints to msf weight files (docs/model.md §2)."""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Mapping, Sequence

from . import pose as pose_, predict as predict_, weights
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint
from .config import Config
from .errors import InputError, WeightsError
from .model import FORMAT, FORMAT_VERSION, Model

CheckpointSource = str | os.PathLike | bytes | bytearray | memoryview


def load(checkpoint: CheckpointSource) -> Checkpoint:
    """The checkpoint, read by our restricted reader (pre-1.6 files are refused: tools/convert_weights.py
    re-saves them with torch); errors name the file. For convert and `msf info` (msf.info)."""
    try:
        return load_checkpoint(checkpoint)
    except CheckpointError as e:
        raise type(e)(f"{_name(checkpoint)}: {e}") from None


def _name(checkpoint: CheckpointSource) -> str:
    return "<bytes>" if isinstance(checkpoint, (bytes, bytearray, memoryview)) else os.fspath(checkpoint)


def _provenance(checkpoint: CheckpointSource, fields: dict, description: str | None,
                resaved_from: str | os.PathLike | None) -> dict:
    from . import __version__  # here, not at import: msf/__init__ may import this module first

    source = checkpoint if resaved_from is None else resaved_from
    digest, size = hashlib.sha256(), 0
    if isinstance(source, (bytes, bytearray, memoryview)):
        digest.update(source)
        size = len(source)
    else:
        with weights.open_regular(source) as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    # the file's name but not its directory: the output does not depend on where it was converted
    provenance = {"converter": f"msf {__version__} convert", "checkpoint": Path(_name(source)).name,
                  "bytes": size, "sha256": digest.hexdigest()}
    if resaved_from is not None:
        provenance["resaved"] = "legacy torch.save format, re-saved by torch for conversion"
    if fields:
        provenance["fields"] = fields
    if description:
        provenance["description"] = description
    return provenance


def convert(checkpoint: CheckpointSource, output: str | os.PathLike, *, skeleton: str | None = None,
            dims: int | None = None, units: str | None = None, root_joints: Sequence[int | str] | None = None,
            image_normalised: bool | None = None, source: str | None = None,
            prediction: Mapping | None = None, resaved_from: str | os.PathLike | None = None) -> Model:
    """Converts a torch.save checkpoint (trainer checkpoint or bare state dict; path or bytes) to an msf
    weight file at `output`, without torch and without executing anything from the checkpoint.

    The config is inferred from the tensor shapes; the pose options are those of msf.pose.convention
    (defaults for the official P). source: a free-text description kept in the provenance metadata.
    prediction: {"history_frames", "future_frames", "fps"} for a motion-prediction model (msf.predict).
    resaved_from: the user's file when `checkpoint` is a re-saved copy of it (tools/convert_weights.py does
    that to legacy checkpoints): errors and the provenance name and fingerprint it, not the copy.
    The file is written atomically (a failed conversion leaves nothing at `output`); an output that is a
    symlink is written through to its target (the link stays), and one that exists but is not a regular
    file (a device, a FIFO, a folder) is refused. Returns the Model as the file will load. Raises
    WeightsError (CheckpointError for unreadable checkpoints) or InputError for pose options that do not
    fit the model or an unusable output path.
    """
    named = checkpoint if resaved_from is None else resaved_from
    # The new file is renamed over the old: over a symlink that would replace the link, so the file goes where
    # the link leads; over a device node (/dev/full, as root) it would replace the device, so that is refused.
    out = os.path.realpath(output)
    if os.path.exists(out) and not os.path.isfile(out):
        raise InputError(f"output {os.fspath(output)!r} exists and is not a regular file (a device, FIFO or "
                         f"folder): choose a file path")
    if not isinstance(named, (bytes, bytearray, memoryview)) and os.path.exists(out) and os.path.samefile(named, out):
        raise InputError(f"output {os.fspath(output)!r} is the checkpoint itself: choose another path")
    ckpt = load(checkpoint)
    try:
        config = Config.from_shapes({k: v.shape for k, v in ckpt.state_dict.items()})
    except WeightsError as e:
        raise WeightsError(f"{_name(named)}: {e}") from None
    pose = pose_.convention(config.P, skeleton=skeleton, dims=dims, units=units, root_joints=root_joints,
                            image_normalised=image_normalised)
    provenance = _provenance(checkpoint, ckpt.fields, source, resaved_from)
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": config.to_json(),
                "pose": json.dumps(pose), "source": json.dumps(provenance)}
    if prediction is not None:
        metadata[predict_.METADATA_KEY] = json.dumps(dict(prediction))
        predict_.read_prediction(metadata, config)  # WeightsError when it does not fit the model
    try:
        model = Model.from_tensors(ckpt.state_dict, metadata)  # drops the unused value_reduce tensors
    except WeightsError as e:  # non-finite or implausible tensors: the checkpoint's
        raise WeightsError(f"{_name(named)}: {e}") from None
    # written beside the output, then renamed over it: a failure never leaves a partial file there
    tmp = os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.{uuid.uuid4().hex}.tmp")
    try:
        weights.write(tmp, model.tensors, metadata)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return model
