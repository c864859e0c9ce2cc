"""Type stub for msf._core, the pybind11 extension built from cpp/python/module.cpp (keep the two in step:
tests/test_stub.py checks that every public name of the built module is here and nothing else is). The
test-only bindings are msf._kernels (_kernels.pyi).

Arrays are converted to C-contiguous float32 on the way in (pybind11 forcecast), so any array-like of
numbers is accepted; every array returned is a new float32 array. Parameters bound without a name
(pybind11's arg0, arg1, ...) are positional-only. Errors raise msf.errors.WeightsError (unusable weights
or safetensors bytes), msf.errors.InputError (wrong shapes, non-finite results) or msf.errors.Error.
"""
import numpy as np
import numpy.typing as npt

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

def isa() -> str:
    """The instruction set the kernels run on this CPU (MSF_ISA may name a lesser one)."""

def isas() -> list[tuple[str, bool]]:
    """Every instruction set msf has kernels for, best first, as (name, available on this CPU and build)."""
