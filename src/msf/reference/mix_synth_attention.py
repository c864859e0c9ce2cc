from typing import Mapping

import numpy as np

from .gelu import gelu
from .linear import linear, vector_product
from .softmax import softmax
from .synth_attention import synth_attention


# MixSynthAttention (paper eq. 5-8; re-weighted per frame with GELU, as the official code does)
def mix_synth_attention(z: np.ndarray, p: Mapping[str, np.ndarray], prefix: str = "") -> np.ndarray:
    """z (..., T, C) -> (..., T, C): temporal and spatial synthesiser branches mixed per frame."""
    y_token = synth_attention(z, p, prefix + "synth_token.")                         # over frames
    y_channel = np.swapaxes(
        synth_attention(np.swapaxes(z, -1, -2), p, prefix + "synth_channel."), -1, -2)  # over channels
    t = z.shape[-2]
    g = (y_token + y_channel).mean(axis=-1)                                          # (..., T)
    hidden = gelu(vector_product(g, p[prefix + "reweight.fc1.weight"].T) + p[prefix + "reweight.fc1.bias"])
    m = vector_product(hidden, p[prefix + "reweight.fc2.weight"].T) + p[prefix + "reweight.fc2.bias"]  # (..., 2T)
    a = softmax(m.reshape(m.shape[:-1] + (t, 2)))                                  # (..., T, 2), interleaved
    mixed = a[..., 0:1] * y_token + a[..., 1:2] * y_channel
    return linear(mixed, p[prefix + "proj.weight"], p[prefix + "proj.bias"])
