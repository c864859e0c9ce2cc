import numpy as np

from .linear import vector_product


# SELayer (paper eq. 2): E * sigmoid(W2 relu(W1 mean_rows(E))), no biases
def se_layer(e: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """e (..., N, d), w1 (N//4, N), w2 (N, N//4) -> (..., N, d): each of the N rows rescaled by a gate."""
    s = e.mean(axis=-1)                                   # (..., N)
    hidden = np.maximum(vector_product(s, w1.T), 0)        # (..., N//4)
    gate = 0.5 + 0.5 * np.tanh(0.5 * vector_product(hidden, w2.T))  # (..., N) sigmoid, without exp overflow
    return e * gate[..., None]
