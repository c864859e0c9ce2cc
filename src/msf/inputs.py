"""Checks on user-supplied arrays shared by refine, recover and streaming."""
from __future__ import annotations

import numpy as np

from .errors import InputError


def real_array(value, what: str) -> np.ndarray:
    """np.asarray(value), refusing ragged nesting and dtypes that are not real numbers (ints, floats)."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise InputError(f"{what} are not an array: {e}") from None
    if array.dtype.kind not in "fiu":
        raise InputError(f"{what} have dtype {array.dtype}; expected real numbers (float32 or float64)")
    return array


def is_integer(value) -> bool:
    """A Python or NumPy integer, not a bool (a bool is not a count)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
