"""Type stub for msf._kernels, the pybind11 extension built from cpp/python/kernels_module.cpp: bindings for
tests only (msf never imports it; a wheel built with MSF_KERNEL_BINDINGS=OFF has none). tests/test_stub.py
checks it against the built module as it does _core.pyi. Conventions (arrays in and out, errors) as in _core.pyi.
"""
import numpy as np
import numpy.typing as npt

MAX_HEADER_BYTES: int
MAX_JSON_DEPTH: int
MAX_INTEGER_DIGITS: int
MAX_SHAPE_DIMS: int
MAX_SHAPE_ELEMENTS: int

def parse_safetensors(data: bytes, /) -> tuple[dict[str, npt.NDArray[np.float32]], dict[str, str]]:
    """The C++ safetensors reader, exposed for tests: bytes -> (tensors, metadata)"""

def linear(
    x: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None = None
) -> npt.NDArray[np.float32]:
    """x (M, K), weight (N, K), bias (N) -> x @ weight.T + bias (M, N)"""

def linear_naive(
    x: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None = None
) -> npt.NDArray[np.float32]:
    """linear, one dot product per output (the reference the blocked version is checked against)"""

def gemm(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    col_bias: npt.ArrayLike | None = None,
    row_bias: npt.ArrayLike | None = None,
    isa: str = "portable",
    a_transposed: bool = False,
) -> npt.NDArray[np.float32]:
    """a (M, K) @ b (K, N) + col_bias (N) + row_bias (M)[:, None], by the GEMM version for `isa` (a name
    of msf._core.isas(); InputError if it is not available on this CPU); with a_transposed, a is given as
    a^T (K, M)"""

def gelu(x: npt.ArrayLike, /) -> npt.NDArray[np.float32]:
    """x * Phi(x) (the exact, erf form) of every element; same shape"""

def gelu_naive(x: npt.ArrayLike, /) -> npt.NDArray[np.float32]:
    """gelu through libm's erfc, element by element"""

def softmax(x: npt.ArrayLike, /) -> npt.NDArray[np.float32]:
    """x (rows, cols), cols >= 1 -> softmax of each row"""

def softmax_columns(x: npt.ArrayLike, /) -> npt.NDArray[np.float32]:
    """x (rows, cols), rows >= 1 -> softmax of each column"""

def layer_norm(
    x: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike, residual: npt.ArrayLike | None = None
) -> npt.NDArray[np.float32]:
    """x (rows, C), weight (C), bias (C), residual (rows, C) or None -> each row of x + residual
    layer-normalised over C (eps 1e-5), affine"""

def se_layer(e: npt.ArrayLike, w1: npt.ArrayLike, w2: npt.ArrayLike, /) -> npt.NDArray[np.float32]:
    """e (N, d), w1 (H, N), w2 (N, H) -> (N, d)"""

def synth_attention(
    s: npt.ArrayLike, p: dict[str, npt.ArrayLike], transposed_out: bool = False
) -> npt.NDArray[np.float32]:
    """s (N, D), p: the module's tensors by state-dict name (dense.weight, ...) -> (N, D), or its
    transpose (D, N) with transposed_out"""

def mix_synth_attention(z: npt.ArrayLike, p: dict[str, npt.ArrayLike], /) -> npt.NDArray[np.float32]:
    """z (T, C), p: synth_att's tensors by state-dict name (synth_token.dense.weight, ...) -> (T, C)"""
