import numpy as np


# softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x) (paper eq. 3)
def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """x (...) -> (...), normalised along `axis`; shifting by the max keeps exp finite."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
