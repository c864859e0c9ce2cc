from typing import Mapping

import numpy as np

from .linear import linear
from .se_layer import se_layer
from .softmax import softmax


# SynthAttention (paper eq. 1-4, reduced as in the official code): softmax(SE(dense(S))) @ V
def synth_attention(s: np.ndarray, p: Mapping[str, np.ndarray], prefix: str = "") -> np.ndarray:
    """s (..., N, D) -> (..., N, D); p holds the module's tensors under `prefix` (state-dict names).

    The N x d attention matrix is synthesised from each row alone (no query-key product).
    With d < N the values are reduced to d rows by `value_reduce` along N; with d == N the
    values are S itself and `value_reduce` is not used (it may be absent).
    """
    n = s.shape[-2]
    e = linear(s, p[prefix + "dense.weight"], p[prefix + "dense.bias"])          # (..., N, d)
    d = e.shape[-1]
    attention = softmax(se_layer(e, p[prefix + "se.fc.0.weight"], p[prefix + "se.fc.2.weight"]))
    if d < n:
        values = np.swapaxes(linear(np.swapaxes(s, -1, -2), p[prefix + "value_reduce.weight"],
                                    p[prefix + "value_reduce.bias"]), -1, -2)      # (..., d, D)
    else:
        values = s
    return attention @ values
