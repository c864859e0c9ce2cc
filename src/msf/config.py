"""Hyper-parameters of a MixSynthFormer, inferred from its tensor shapes (docs/model.md §1)."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Mapping

from . import schema
from .errors import WeightsError

# Sizes come from untrusted files: a few MB of weights must not make one window need gigabytes. Both
# backends refuse a model whose workspace_floats exceeds this many floats per weight plus the allowance
# (real models need less workspace than they have weights); the C++ loader uses the same two numbers.
WORKSPACE_PER_WEIGHT = 16
WORKSPACE_ALLOWANCE = 1 << 22
MAX_SIZE = 1 << 24  # any one size (T, Q+1, C, P, ...) read from a shape; the C++ loader's cap too


def _aligned(n: int) -> int:
    """n rounded up to 16 floats, a 64-byte cache line (the C++ kernels::aligned_floats)."""
    return -(-n // 16) * 16


# The official MixSynthFormer configurations (docs/model.md §1): name -> (K, Q, P, C, L). The official
# trainer builds every one with OFFICIAL_REDUCE (reduce_token r_t, reduce_channel r_c, FFN expansion).
# The one source of these numbers: tests/conftest.py, benchmarks/speed.py and benchmarks/parity.py read them
# here; msf.pose.OFFICIAL holds the pose convention of each of their P.
OFFICIAL_CONFIGS: dict[str, tuple[int, int, int, int, int]] = {
    "h36m": (10, 10, 51, 64, 4),
    "jhmdb": (10, 1, 30, 128, 5),
    "pw3d": (10, 5, 42, 32, 4),         # pw3d spin and eft
    "pw3d_pare": (5, 10, 42, 32, 4),
    "aist": (10, 10, 42, 128, 5),
    "h36m_smpl": (10, 10, 144, 64, 4),  # *_smpl: 24 joints x 6D rotations
}
OFFICIAL_REDUCE = {"reduce_token": 4, "reduce_channel": 1, "expansion": 2}


@dataclass(frozen=True)
class Config:
    """K: keyframe interval (frames); Q: steps per window (Q+1 keyframes); P: values per pose (J*D);
    C: embedding width; L: encoder blocks; ffn_hidden: feed-forward width (C * expansion);
    d_t, d_c: reduced attention sizes of the temporal (over T frames) and spatial (over C channels) branches;
    se_t, se_c: SELayer hidden sizes of the two branches; reweight_hidden: width of the mixing MLP."""

    K: int
    Q: int
    P: int
    C: int
    L: int
    ffn_hidden: int
    d_t: int
    d_c: int
    se_t: int
    se_c: int
    reweight_hidden: int

    @property
    def T(self) -> int:
        """Frames in one window: K*Q + 1."""
        return self.K * self.Q + 1

    @property
    def n_keyframes(self) -> int:
        """Keyframes in one window: Q + 1 (frames 0, K, ..., K*Q)."""
        return self.Q + 1

    @property
    def parameter_count(self) -> int:
        """Floats of the tensors the forward reads (an unused value_reduce not counted)."""
        return sum(math.prod(shape) for shape in self.expected_shapes().values())

    @property
    def workspace_floats(self) -> int:
        """Floats of working memory one window needs, as the C++ loader counts it for the plausibility rule
        (its allocation also pads each of these buffers to a cache line): interpolated X
        (T, P), Z and a temporary (T, C), the feed-forward hidden (T, F), then the mixing step's scratch:
        4 (T, C) buffers, its MLP's (T + H + 2T) and the larger synthesiser's attention (N, d), values
        (d, D) and SE scratch (N + H); the values and the synthesiser's scratch start on 64-byte cache lines, 16
        floats: _aligned). The NumPy reference's intermediates are of the same order."""
        T, C, P = self.T, self.C, self.P
        token = _aligned(T * self.d_t) + self.d_t * C + T + self.se_t
        channel = _aligned(C * self.d_c) + self.d_c * T + C + self.se_c
        mixing = _aligned(4 * T * C + T + self.reweight_hidden + 2 * T) + max(token, channel)
        return T * P + 2 * T * C + T * self.ffn_hidden + mixing

    def check_workspace(self) -> None:
        """WeightsError when one window would need more than WORKSPACE_PER_WEIGHT floats per weight plus
        WORKSPACE_ALLOWANCE (the message is the C++ loader's, number for number)."""
        need, weights = self.workspace_floats, self.parameter_count
        if need > WORKSPACE_PER_WEIGHT * weights + WORKSPACE_ALLOWANCE:
            raise WeightsError(f"implausible model sizes: a window would need {need} floats of workspace for "
                               f"{weights} weights (at most {WORKSPACE_PER_WEIGHT} per weight + "
                               f"{WORKSPACE_ALLOWANCE})")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor name the model reads, with its shape (msf.schema). value_reduce appears only where used."""
        return schema.expected_shapes(self)

    @classmethod
    def from_shapes(cls, shapes: Mapping[str, tuple[int, ...]]) -> "Config":
        """Infers the config from state-dict shapes (the sizes msf.schema.binding_specs names) and checks every
        tensor of msf.schema against it.

        Unused `value_reduce` tensors (d == N) are allowed but must have the official shape.
        Raises WeightsError naming missing, unexpected and mis-shaped tensors.
        """
        def dim(name: str, axis: int) -> int:
            if name not in shapes:
                raise WeightsError(f"missing tensor {name!r}: this is not a MixSynthFormer state dict")
            shape = tuple(shapes[name])
            if len(shape) != 2:
                raise WeightsError(f"tensor {name!r} has shape {list(shape)}, expected a 2-D weight")
            if shape[axis] > MAX_SIZE:
                raise WeightsError(f"tensor {name!r} is implausibly large: {list(shape)} (each model size is at "
                                   f"most {MAX_SIZE})")
            return int(shape[axis])

        n: dict[str, int] = {}
        block0 = schema.BLOCK_PREFIX.format(0)
        binding = list(schema.binding_specs())

        def read_sizes(in_block: bool) -> None:
            for name, spec in binding:
                if name.startswith(block0) == in_block:
                    for axis, symbol in enumerate(spec.shape):
                        if symbol not in n and symbol not in schema.DERIVED:
                            n[symbol] = dim(name, axis)

        read_sizes(in_block=False)
        T, Q1 = n["T"], n["Q1"]
        Q = Q1 - 1
        if Q < 1 or T < 2 or (T - 1) % Q:
            raise WeightsError(f"l_interp.weight has shape {[T, Q1]}: T - 1 = {T - 1} must be a positive "
                               f"multiple of Q = {Q} (T = K*Q + 1 with Q >= 1)")
        # blocks are numbered 0..L-1; keys of any later block are reported as unexpected. The numbers present
        # are gathered in one pass over the keys: a file may name thousands of blocks.
        head, numbers = schema.BLOCK_PREFIX.split("{}")[0], set()
        for k in shapes:
            number, dot, _ = k[len(head):].partition(".")
            if dot and k.startswith(head):
                numbers.add(number)
        L = 0
        while str(L) in numbers:
            L += 1
        if L == 0:
            raise WeightsError("no encoder blocks (encoder.layers.0.*): this is not a MixSynthFormer state dict")
        read_sizes(in_block=True)
        config = cls(K=(T - 1) // Q, Q=Q, P=n["P"], C=n["C"], L=L, ffn_hidden=n["F"], d_t=n["d_t"], d_c=n["d_c"],
                     se_t=n["se_t"], se_c=n["se_c"], reweight_hidden=n["H"])
        for field, value in asdict(config).items():
            if value < 1:
                raise WeightsError(f"inferred {field} = {value}: every size of the model must be >= 1")
        if config.d_t > T or config.d_c > config.C:
            raise WeightsError(f"reduced sizes d_t = {config.d_t}, d_c = {config.d_c} exceed T = {T}, "
                               f"C = {config.C}")
        expected, optional = schema.expected_shapes(config), schema.unused_shapes(config)
        missing = sorted(set(expected) - set(shapes))
        unexpected = sorted(set(shapes) - set(expected) - set(optional))
        wrong = [f"{k}: {list(shapes[k])} (expected {list(v)})"
                 for k, v in {**expected, **optional}.items() if k in shapes and tuple(shapes[k]) != v]
        problems = []
        if missing:
            problems.append("missing tensors: " + ", ".join(missing))
        if unexpected:
            problems.append("unexpected tensors: " + ", ".join(unexpected))
        if wrong:
            problems.append("shapes that disagree with the inferred config: " + "; ".join(wrong))
        if problems:
            raise WeightsError(f"not a consistent MixSynthFormer (inferred {config}): " + " | ".join(problems))
        return config


def official_config(K: int, Q: int, P: int, C: int, L: int, reduce_token: int = OFFICIAL_REDUCE["reduce_token"],
                    reduce_channel: int = OFFICIAL_REDUCE["reduce_channel"],
                    expansion: int = OFFICIAL_REDUCE["expansion"]) -> Config:
    """The config the official PoseRefinementModel(K, Q, P, C, L, ...) constructor builds, e.g.
    official_config(*OFFICIAL_CONFIGS["h36m"])."""
    T = K * Q + 1
    return Config(K=K, Q=Q, P=P, C=C, L=L, ffn_hidden=C * expansion, d_t=T // reduce_token,
                  d_c=C // reduce_channel, se_t=T // 4, se_c=C // 4, reweight_hidden=T // 4)
