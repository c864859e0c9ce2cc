import numpy as np


# y = x W^T + b (every nn.Linear of the model)
def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """x (..., in), weight (out, in), bias (out,) or None -> (..., out)."""
    y = x @ weight.T
    return y if bias is None else y + bias


def vector_product(v: np.ndarray, matrix_t: np.ndarray) -> np.ndarray:
    """v (..., in) @ matrix_t (in, out) -> (..., out), one product per vector.

    For vectors with leading batch axes (one per window): a plain (B, in) @ (in, out) is a single BLAS
    GEMM whose rounding can depend on B, so a window's result would depend on the batch it is in;
    (B, 1, in) @ (in, out) runs each window's product on its own.
    """
    return (v[..., None, :] @ matrix_t)[..., 0, :]
