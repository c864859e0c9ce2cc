"""A MixSynthFormer: its config, its float32 tensors and its pose convention, checked for consistency."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np

from .config import Config
from .errors import WeightsError
from .pose import PoseConvention
from .weights import Weights, loads

FORMAT = "msf"
FORMAT_VERSION = "1"
_TINY = np.finfo(np.float32).tiny  # the smallest normal float32; nonzero values below it are subnormal


def _json_object(metadata: Mapping[str, str], key: str) -> dict | None:
    """The metadata entry as a JSON object, read as strictly as the C++ loader reads it (msf.weights.loads:
    depth, integer digits, NaN, lone surrogates, repeated keys)."""
    if key not in metadata:
        return None
    if not isinstance(metadata[key], str):
        raise WeightsError(f"metadata {key!r} must be a string of JSON, not {type(metadata[key]).__name__}")
    value = loads(metadata[key], f"metadata {key!r}")
    if not isinstance(value, dict):
        raise WeightsError(f"metadata {key!r} must be a JSON object")
    return value


@dataclass(frozen=True)
class Model:
    """config: hyper-parameters; tensors: exactly the tensors the forward reads (float32, C-contiguous);
    pose: the pose convention from the file's metadata, as stored ({} when absent); convention: the same,
    typed and checked against config.P (WeightsError); metadata: all string metadata."""

    config: Config
    tensors: Mapping[str, np.ndarray]
    pose: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    convention: PoseConvention = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "convention", PoseConvention.from_metadata(self.pose, self.config.P))

    @property
    def pose_shape(self) -> tuple[int, int] | None:
        """(J joints, D dims) from the pose metadata, or None when the file does not say."""
        return self.convention.shape

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
                     ) -> "Model":
        """Checks a state dict (names without `module.`) and its metadata; raises WeightsError."""
        metadata = dict(metadata or {})
        if metadata.get("format", FORMAT) != FORMAT:
            raise WeightsError(f"metadata format is {metadata['format']!r}, expected {FORMAT!r}")
        if metadata.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
            raise WeightsError(f"format_version {metadata['format_version']!r} is not supported by this msf "
                               f"(it reads version {FORMAT_VERSION}); upgrade msf")
        config = Config.from_shapes({k: np.shape(v) for k, v in tensors.items()})
        stated = _json_object(metadata, "config")
        if stated is not None:
            inferred = asdict(config)
            disagree = {k: (v, inferred[k]) for k, v in stated.items() if k in inferred
                        and (not isinstance(v, int) or isinstance(v, bool) or v != inferred[k])}
            if disagree:
                raise WeightsError("metadata config disagrees with the tensor shapes "
                                   + ", ".join(f"{k}: stated {s}, shapes give {i}" for k, (s, i) in disagree.items()))
        kept = {}
        expected = config.expected_shapes()
        for name in tensors:  # the expected ones, and unused value_reduce tensors: checked (as in C++), dropped
            with np.errstate(over="ignore"):  # values beyond float32 become inf and are refused just below
                array = np.ascontiguousarray(tensors[name], dtype=np.float32)
            if not np.isfinite(array).all():
                raise WeightsError(f"tensor {name!r} contains NaN or infinite values (or values beyond float32 range)")
            if name not in expected:
                continue
            subnormal = (array != 0) & (np.abs(array) < _TINY)
            if subnormal.any():  # as the C++ loader does: they would act as zero there (FTZ/DAZ) and be slow
                array = np.where(subnormal, np.float32(0), array)
            array.flags.writeable = False
            kept[name] = array
        kept = {name: kept[name] for name in expected}
        config.check_workspace()
        pose = _json_object(metadata, "pose") or {}
        return cls(config=config, tensors=kept, pose=pose, metadata=metadata)  # the pose is checked here

    @classmethod
    def from_weights(cls, weights: Weights) -> "Model":
        return cls.from_tensors(weights.tensors, weights.metadata)
