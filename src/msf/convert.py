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
    ckpt = load(checkpoint)
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
