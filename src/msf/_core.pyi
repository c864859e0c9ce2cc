"""Type stub for msf._core, the pybind11 extension built from cpp/python/module.cpp (keep the two in step:
tests/test_stub.py checks that every public name of the built module is here and nothing else is).

Arrays are converted to C-contiguous float32 on the way in (pybind11 forcecast), so any array-like of
numbers is accepted; every array returned is a new float32 array. Parameters bound without a name
(pybind11's arg0, arg1, ...) are positional-only. Errors raise msf.errors.WeightsError (unusable weights
or safetensors bytes), msf.errors.InputError (wrong shapes, non-finite results) or msf.errors.Error.
"""
import numpy as np
import numpy.typing as npt

MAX_HEADER_BYTES: int
MAX_JSON_DEPTH: int
MAX_INTEGER_DIGITS: int
MAX_SHAPE_DIMS: int
MAX_SHAPE_ELEMENTS: int

class Model:
    """The MixSynthFormer forward in float32 (msf::Model)."""

    def __init__(self, tensors: dict[str, npt.ArrayLike], /) -> None:
        """tensors: state-dict name -> float32 array"""

    @staticmethod
    def from_file(path: str, /) -> Model: ...
    @staticmethod
    def from_buffer(data: bytes, /) -> Model: ...
    @property
    def config(self) -> dict[str, int]:
        """K, Q, P, C, L, ffn_hidden, d_t, d_c, se_t, se_c, reweight_hidden."""

    @property
    def metadata(self) -> dict[str, str]:
        """The safetensors file's __metadata__."""

    def refine(self, keyframes: npt.ArrayLike, threads: int = 1) -> npt.NDArray[np.float32]:
        """keyframes (B, Q+1, P) float32 -> (B, T, P) float32; GIL released; threads <= 0: all cores"""

def parse_safetensors(data: bytes, /) -> tuple[dict[str, npt.NDArray[np.float32]], dict[str, str]]:
    """The C++ safetensors reader, exposed for tests: bytes -> (tensors, metadata)"""

# msf._core.kernels is a submodule at run time (`from msf._core import kernels`). One .pyi file cannot hold
# a submodule, so it is declared here as a namespace of static functions: `kernels.gelu(x)` and the like
# type-check with these signatures.
class kernels:
    """Single operators, for tests against msf.reference"""

    @staticmethod
    def linear(
        x: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None = None
    ) -> npt.NDArray[np.float32]:
        """x (M, K), weight (N, K), bias (N) -> x @ weight.T + bias (M, N)"""

    @staticmethod
    def linear_naive(
        x: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None = None
    ) -> npt.NDArray[np.float32]:
        """linear, one dot product per output (the reference the blocked version is checked against)"""

    @staticmethod
    def gemm(
        a: npt.ArrayLike,
        b: npt.ArrayLike,
        col_bias: npt.ArrayLike | None = None,
        row_bias: npt.ArrayLike | None = None,
        isa: str = "portable",
    ) -> npt.NDArray[np.float32]:
        """a (M, K) @ b (K, N) + col_bias (N) + row_bias (M)[:, None], by the GEMM version for `isa` (a name
        of isas(); InputError if it is not available on this CPU)"""

    @staticmethod
    def isa() -> str:
        """The instruction set the kernels run on this CPU (MSF_ISA may name a lesser one)."""

    @staticmethod
    def isas() -> list[tuple[str, bool]]:
        """Every instruction set msf has kernels for, best first, as (name, available on this CPU and build)."""

    @staticmethod
    def gelu(x: npt.ArrayLike, /) -> npt.NDArray[np.float32]:
        """x * Phi(x) (the exact, erf form) of every element; same shape"""

    @staticmethod
    def gelu_naive(x: npt.ArrayLike, /) -> npt.NDArray[np.float32]:
        """gelu through libm's erfc, element by element"""

    @staticmethod
    def softmax(x: npt.ArrayLike, /) -> npt.NDArray[np.float32]:
        """x (rows, cols), cols >= 1 -> softmax of each row"""

    @staticmethod
    def layer_norm(x: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike, /) -> npt.NDArray[np.float32]:
        """x (rows, C), weight (C), bias (C) -> each row layer-normalised over C (eps 1e-5), affine"""

    @staticmethod
    def se_layer(e: npt.ArrayLike, w1: npt.ArrayLike, w2: npt.ArrayLike, /) -> npt.NDArray[np.float32]:
        """e (N, d), w1 (H, N), w2 (N, H) -> (N, d)"""

    @staticmethod
    def synth_attention(s: npt.ArrayLike, p: dict[str, npt.ArrayLike], /) -> npt.NDArray[np.float32]:
        """s (N, D), p: the module's tensors by state-dict name (dense.weight, ...) -> (N, D)"""

    @staticmethod
    def mix_synth_attention(z: npt.ArrayLike, p: dict[str, npt.ArrayLike], /) -> npt.NDArray[np.float32]:
        """z (T, C), p: synth_att's tensors by state-dict name (synth_token.dense.weight, ...) -> (T, C)"""
