"""The state-dict schema of a MixSynthFormer (docs/model.md §1): every tensor the forward reads, its shape in
config terms, how the C++ engine stores it and when it is optional.

The one home of these facts. msf.config infers a Config from a state dict and checks it with this table; the
C++ loader (cpp/src/model.cpp) does the same with cpp/src/schema.inc, which `python tools/make_schema.py`
writes from this table (tests/test_schema.py checks that the file is current and that both languages accept
exactly the same names). docs/contributing.md says how to add a tensor.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np

if TYPE_CHECKING:
    from .config import Config

# Dimension symbols a shape may name (C identifiers: the C++ header uses them as they are). Every one but T2
# is a size of the config, read off the first 2-D, always-present tensor in table order that names it (global
# tensors, then those of block 0); T2 = 2T is derived and only checked.
DIMENSIONS = {
    "T": "frames per window, K*Q + 1",
    "Q1": "keyframes per window, Q + 1",
    "P": "values per pose, J*D",
    "C": "embedding width",
    "F": "feed-forward width (ffn_hidden)",
    "H": "width of the mixing MLP (reweight_hidden)",
    "T2": "2T: the mixing MLP's output, one weight per branch and frame",
    "d_t": "reduced size of the temporal (token) branch",
    "d_c": "reduced size of the spatial (channel) branch",
    "se_t": "SELayer hidden size of the temporal branch",
    "se_c": "SELayer hidden size of the spatial branch",
}
DERIVED = {"T2": ("T", 2)}  # symbol -> (base symbol, factor)


@dataclass(frozen=True)
class TensorSpec:
    """name: the state-dict key (per block: after `encoder.layers.{i}.`); shape: dimension symbols;
    transposed: the C++ engine stores the (out, in) nn.Linear weight as (in, out) for kernels::linear_forward;
    kind: "weight" (fan-in last), "bias" or "gain" (a LayerNorm weight), for random test weights;
    needed_if: (a, b) when the forward reads the tensor only where a < b; elsewhere the official code still
    stores it, unused: it is then accepted if its shape is right, and dropped."""

    name: str
    shape: tuple[str, ...]
    transposed: bool = False
    kind: str = "weight"
    needed_if: tuple[str, str] | None = None


def _linear(prefix: str, out: str, inp: str, transposed: bool = True, needed_if=None) -> list[TensorSpec]:
    """An nn.Linear's weight (out, in) and bias (out,)."""
    return [TensorSpec(prefix + "weight", (out, inp), transposed, "weight", needed_if),
            TensorSpec(prefix + "bias", (out,), False, "bias", needed_if)]


def _layer_norm(prefix: str) -> list[TensorSpec]:
    return [TensorSpec(prefix + "weight", ("C",), kind="gain"), TensorSpec(prefix + "bias", ("C",), kind="bias")]


def _synthesiser(branch: str, n: str, d_in: str, d: str, se: str) -> list[TensorSpec]:
    """SynthAttenOp over n items of d_in features reduced to d (Eq. 3-5), with its SELayer (hidden se)."""
    p = f"synth_att.{branch}."
    return [*_linear(p + "dense.", d, d_in),
            TensorSpec(p + "se.fc.0.weight", (se, n), True), TensorSpec(p + "se.fc.2.weight", (n, se), True),
            *_linear(p + "value_reduce.", d, n, transposed=False, needed_if=(d, n))]


# Step 1-2 and 4 of the forward: interpolation, embedding, final norm and projection.
GLOBAL: tuple[TensorSpec, ...] = (
    *_linear("l_interp.", "T", "Q1", transposed=False),  # applied over frames: X = W @ keyframes + b
    *_linear("encoder_emb.", "C", "P"),
    *_layer_norm("norm."),
    *_linear("fc.", "P", "C"),
)
# Step 3: one encoder block (Eq. 6-8), under `encoder.layers.{i}.`.
BLOCK: tuple[TensorSpec, ...] = (
    *_synthesiser("synth_token", "T", "C", "d_t", "se_t"),
    *_synthesiser("synth_channel", "C", "T", "d_c", "se_c"),
    *_linear("synth_att.reweight.fc1.", "H", "T"),
    *_linear("synth_att.reweight.fc2.", "T2", "H"),
    *_linear("synth_att.proj.", "C", "C"),
    *_linear("ff.fc1.", "F", "C"),
    *_linear("ff.fc2.", "C", "F"),
    *_layer_norm("norm1."),
    *_layer_norm("norm2."),
)
BLOCK_PREFIX = "encoder.layers.{}."


def binding_specs() -> Iterator[tuple[str, TensorSpec]]:
    """(name, spec) of the tensors that define the config's sizes, in inference order: the first 2-D,
    always-present tensor naming each base symbol (global tensors, then block 0)."""
    bound: set[str] = set()
    for prefix, specs in (("", GLOBAL), (BLOCK_PREFIX.format(0), BLOCK)):
        for spec in specs:
            fresh = [s for s in spec.shape if s not in bound and s not in DERIVED]
            if len(spec.shape) == 2 and spec.needed_if is None and fresh:
                bound.update(fresh)
                yield prefix + spec.name, spec


def sizes(config: "Config") -> dict[str, int]:
    """The value of every dimension symbol for `config`."""
    c = config
    base = {"T": c.T, "Q1": c.n_keyframes, "P": c.P, "C": c.C, "F": c.ffn_hidden, "H": c.reweight_hidden,
            "d_t": c.d_t, "d_c": c.d_c, "se_t": c.se_t, "se_c": c.se_c}
    return {**base, **{s: factor * base[b] for s, (b, factor) in DERIVED.items()}}


def tensors(config: "Config") -> Iterator[tuple[str, tuple[int, ...], TensorSpec, bool]]:
    """(name, shape, spec, needed) of every tensor of `config` in table order (global, then block by block);
    needed is False for one the official code stores but the forward never reads."""
    n = sizes(config)
    for i in range(-1, config.L):
        prefix, specs = ("", GLOBAL) if i < 0 else (BLOCK_PREFIX.format(i), BLOCK)
        for spec in specs:
            needed = spec.needed_if is None or n[spec.needed_if[0]] < n[spec.needed_if[1]]
            yield prefix + spec.name, tuple(n[s] for s in spec.shape), spec, needed


def expected_shapes(config: "Config") -> dict[str, tuple[int, ...]]:
    """Every tensor the forward reads, with its shape, in table order."""
    return {name: shape for name, shape, _, needed in tensors(config) if needed}


def unused_shapes(config: "Config") -> dict[str, tuple[int, ...]]:
    """The tensors the official code stores but the forward never reads (value_reduce where d == N)."""
    return {name: shape for name, shape, _, needed in tensors(config) if not needed}


def random_state_dict(config: "Config", rng: np.random.Generator | int = 0, with_unused: bool = True
                      ) -> dict[str, np.ndarray]:
    """Random float64 tensors of sensible scale under every official state-dict key of `config` (with the
    unused ones when with_unused, as official checkpoints have them): weights N(0, 1/fan_in), biases
    N(0, 0.01), LayerNorm gains 1 + N(0, 0.01). For tests, examples and fuzz corpora; not a trained model."""
    rng = np.random.default_rng(rng)
    entries = list(tensors(config))
    chosen = [e for e in entries if e[3]] + ([e for e in entries if not e[3]] if with_unused else [])  # unused last
    out = {}
    for name, shape, spec, _ in chosen:
        if spec.kind == "gain":
            out[name] = 1 + 0.1 * rng.standard_normal(shape)
        elif spec.kind == "bias":
            out[name] = 0.1 * rng.standard_normal(shape)
        else:
            out[name] = rng.standard_normal(shape) / np.sqrt(shape[1])
    return out
