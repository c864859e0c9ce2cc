"""msf.schema is the one state-dict schema: the C++ header generated from it is current, and the NumPy
reference, the Python loader and the C++ loader read exactly its names, for any sizes."""
import subprocess
import sys
from collections.abc import Mapping

import numpy as np
from hypothesis import given, settings, strategies as st

import msf
from helpers import HAS_CPP, TOOLS
from msf import schema, weights
from msf.config import Config
from msf.reference import model_forward

if HAS_CPP:
    from msf import _core


def test_cpp_header_is_generated_from_the_table():
    done = subprocess.run([sys.executable, str(TOOLS / "make_schema.py"), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# Any consistent sizes, not only the official ones: d < N and d == N in both branches, small so that each
# example loads a few hundred state dicts quickly.
configs = st.builds(
    lambda K, Q, J, D, C, L, F, d_t, d_c, se_t, se_c, H: Config(
        K=K, Q=Q, P=J * D, C=C, L=L, ffn_hidden=F, d_t=min(d_t, K * Q + 1), d_c=min(d_c, C), se_t=se_t, se_c=se_c,
        reweight_hidden=H),
    K=st.integers(1, 4), Q=st.integers(1, 3), J=st.integers(1, 3), D=st.sampled_from([2, 3]), C=st.integers(1, 6),
    L=st.integers(1, 2), F=st.integers(1, 5), d_t=st.integers(1, 13), d_c=st.integers(1, 6), se_t=st.integers(1, 3),
    se_c=st.integers(1, 3), H=st.integers(1, 3))


class Recording(Mapping):
    """A state dict that remembers which names were read."""

    def __init__(self, tensors):
        self.tensors, self.read = tensors, set()

    def __getitem__(self, name):
        self.read.add(name)
        return self.tensors[name]

    def __iter__(self):
        return iter(self.tensors)

    def __len__(self):
        return len(self.tensors)


@settings(max_examples=30, deadline=None)
@given(config=configs)
def test_reference_forward_reads_exactly_the_schema(config):
    tensors = Recording(schema.random_state_dict(config, 0))
    model_forward(np.zeros((1, config.n_keyframes, config.P)), tensors, config.L)
    assert tensors.read == set(schema.expected_shapes(config))


def loaders():
    yield "python", lambda tensors: msf.Model.from_tensors(tensors).config
    if HAS_CPP:
        yield "cpp", lambda tensors: Config(**_core.Model.from_buffer(weights.to_bytes(tensors)).config)


def verdict(load, tensors):
    """The config a loader infers, or the message of its WeightsError."""
    try:
        return load(tensors)
    except msf.WeightsError as error:
        return str(error)


@settings(max_examples=12, deadline=None)
@given(config=configs, seed=st.integers(0, 2**31))
def test_both_loaders_read_exactly_the_schema(config, seed):
    full = {k: v.astype(np.float32) for k, v in schema.random_state_dict(config, seed).items()}
    needed, unused = schema.expected_shapes(config), schema.unused_shapes(config)
    binding = {name for name, _ in schema.binding_specs()}
    assert set(full) == set(needed) | set(unused) and not set(needed) & set(unused)
    cases = {"all": full, "needed only": {k: v for k, v in full.items() if k not in unused}}
    for name in full:
        cases["without " + name] = {k: v for k, v in full.items() if k != name}
        widened = full[name].shape[:-1] + (full[name].shape[-1] + 1,)
        cases["widened " + name] = dict(full, **{name: np.zeros(widened, np.float32)})
    extras = ("encoder.layers.0.synth_att.extra.weight", "l_interp.scale", f"encoder.layers.{config.L}.ff.fc1.bias")
    for extra in extras:
        cases["extra " + extra] = dict(full, **{extra: np.zeros(2, np.float32)})
    results = {language: {case: verdict(load, tensors) for case, tensors in cases.items()}
               for language, load in loaders()}
    python = results["python"]
    for case, result in python.items():
        what, _, name = case.partition(" ")
        if case in ("all", "needed only") or (what == "without" and name in unused):
            assert result == config, case  # each unused tensor is optional
        elif what == "without":  # each needed one is required, by name
            assert isinstance(result, str) and name in result, case
        elif what == "extra" or name not in binding:  # a wrong shape, where it does not define a size
            assert isinstance(result, str) and name.split(".")[-2] in result, case
    if "cpp" in results:  # the C++ loader accepts the same sets, inferring the same configs
        for case, result in results["cpp"].items():
            assert isinstance(result, str) == isinstance(python[case], str), (case, result, python[case])
            assert isinstance(result, str) or result == python[case], case
