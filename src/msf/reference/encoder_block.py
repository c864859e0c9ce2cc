from typing import Mapping

import numpy as np

from .gelu import gelu
from .layer_norm import layer_norm
from .linear import linear
from .mix_synth_attention import mix_synth_attention


# One post-norm encoder block: Z = LN1(Z + MixSynth(Z)); Z = LN2(Z + fc2(GELU(fc1(Z))))
def encoder_block(z: np.ndarray, p: Mapping[str, np.ndarray], prefix: str = "") -> np.ndarray:
    """z (..., T, C) -> (..., T, C); p holds `encoder.layers.{i}.` tensors under `prefix`."""
    z = layer_norm(z + mix_synth_attention(z, p, prefix + "synth_att."),
                   p[prefix + "norm1.weight"], p[prefix + "norm1.bias"])
    hidden = gelu(linear(z, p[prefix + "ff.fc1.weight"], p[prefix + "ff.fc1.bias"]))
    feed_forward = linear(hidden, p[prefix + "ff.fc2.weight"], p[prefix + "ff.fc2.bias"])
    return layer_norm(z + feed_forward, p[prefix + "norm2.weight"], p[prefix + "norm2.bias"])
