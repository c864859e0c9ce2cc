import numpy as np

EPS = 1e-5  # nn.LayerNorm's default, used by every norm of the official model


# LN(x) = (x - mean) / sqrt(var + eps) * weight + bias, biased variance over the last axis
def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = EPS) -> np.ndarray:
    """x (..., C), weight (C,), bias (C,) -> (..., C)."""
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + np.asarray(eps, dtype=x.dtype)) * weight + bias
