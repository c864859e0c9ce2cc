"""msf: fast CPU inference for MixSynthFormer keyframe pose refinement (ICCV 2023).

    import msf
    r = msf.Refiner.load("model.safetensors")     # backend="auto" | "cpp" | "numpy"
    frames = r.refine(keyframes)                  # (Q+1, P) -> (T, P), T = K*Q + 1
"""
from .backend import available as backends
from .checkpoint import CheckpointError
from .config import Config
from .errors import BackendError, Error, InputError, WeightsError
from .model import Model
from .refiner import Refiner, models
from .sequence import Stream, keyframe_indices
from .weights import Weights

__version__ = "0.1.0"
__all__ = ["BackendError", "CheckpointError", "Config", "Error", "InputError", "Model", "Refiner", "Stream", "Weights",
           "WeightsError", "backends", "keyframe_indices", "models", "__version__"]
