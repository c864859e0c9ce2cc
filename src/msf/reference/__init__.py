"""Pure-NumPy reference of every MixSynthFormer operator and of the model forward.

It is the specification the C++ kernels are tested against and the fallback backend: readable first,
vectorised over leading batch axes. Tensor names are the official state-dict's.
"""
from .encoder_block import encoder_block
from .gelu import erf, erfc, gelu
from .layer_norm import layer_norm
from .linear import linear
from .mix_synth_attention import mix_synth_attention
from .model import model_forward
from .se_layer import se_layer
from .softmax import softmax
from .synth_attention import synth_attention

__all__ = ["encoder_block", "erf", "erfc", "gelu", "layer_norm", "linear", "mix_synth_attention",
           "model_forward", "se_layer", "softmax", "synth_attention"]
