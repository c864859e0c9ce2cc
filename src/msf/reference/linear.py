import numpy as np


# y = x W^T + b (every nn.Linear of the model)
def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """x (..., in), weight (out, in), bias (out,) or None -> (..., out)."""
    y = x @ weight.T
    return y if bias is None else y + bias
