"""The FLOP count of one window's forward (docs/model.md §1): one source for `msf info` and benchmarks/speed.py."""
from __future__ import annotations

from .config import Config

# flops_per_window in one expression, as both print it (a sum over Config's fields; [x] is 1 where x holds,
# else 0).
FLOPS_FORMULA = ("2 [T(Q+1)P + 2TPC + L (TC d_t (2 + [d_t<T]) + 2T se_t + TC d_c (2 + [d_c<C]) + 2C se_c\n"
                 "+ 3T reweight_hidden + TC^2 + 2TC ffn_hidden)]; element-wise work is not counted")


def flops_per_window(c: Config) -> int:
    """FLOPs of one window's forward: 2 x the multiply-adds of every matrix product (docs/model.md §1).
    Element-wise work (biases, LayerNorm, GELU, softmax, the SE and mixing scalings) is not counted.

        T(Q+1)P  interpolation  +  TPC  embedding  +  TCP  output
        + L x [ T C d_t + 2 T se_t + [d_t < T] C T d_t + T d_t C     token branch: dense, SE, value, A V
              + C T d_c + 2 C se_c + [d_c < C] T C d_c + C d_c T     channel branch
              + 3 T h + T C^2 + 2 T C F ]                            reweight, proj, FFN
    """
    T, Q1, P, C, F, h = c.T, c.n_keyframes, c.P, c.C, c.ffn_hidden, c.reweight_hidden
    token = T * C * c.d_t + 2 * T * c.se_t + (c.d_t < T) * C * T * c.d_t + T * c.d_t * C
    channel = C * T * c.d_c + 2 * C * c.se_c + (c.d_c < C) * T * C * c.d_c + C * c.d_c * T
    block = token + channel + 3 * T * h + T * C * C + 2 * T * C * F
    return 2 * (T * Q1 * P + T * P * C + T * C * P + c.L * block)
