from typing import Mapping

import numpy as np

from .encoder_block import encoder_block
from .layer_norm import layer_norm
from .linear import linear


# The whole PoseRefinementModel forward on keyframes (docs/model.md §1, steps 1-4)
def model_forward(keyframes: np.ndarray, p: Mapping[str, np.ndarray], num_layers: int) -> np.ndarray:
    """keyframes (B, Q+1, P) -> (B, T, P); p holds the state-dict tensors (no `module.` prefix)."""
    x = np.swapaxes(linear(np.swapaxes(keyframes, -1, -2), p["l_interp.weight"], p["l_interp.bias"]),
                    -1, -2)                                                   # (B, T, P) interpolation
    z = linear(x, p["encoder_emb.weight"], p["encoder_emb.bias"])             # (B, T, C)
    for i in range(num_layers):
        z = encoder_block(z, p, f"encoder.layers.{i}.")
    z = layer_norm(z, p["norm.weight"], p["norm.bias"])
    return linear(z, p["fc.weight"], p["fc.bias"]) + x
