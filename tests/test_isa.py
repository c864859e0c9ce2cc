"""MSF_ISA and the dispatch: msf._core.isa() and isas() report what the forward runs on, and MSF_ISA forces a
lesser instruction set for the whole model (or is refused)."""
import os

import numpy as np
import pytest

import msf
from helpers import HAS_CPP, requires_cpp
from msf import reference as ref
from tolerances import MODEL_ATOL_OF_MAX, assert_close

pytestmark = requires_cpp
if HAS_CPP:
    from msf import _core

ISAS = [name for name, _ in _core.isas()] if HAS_CPP else ["portable"]


def test_dispatch_names_a_version():
    """The active ISA is the best available one (MSF_ISA unset) or the one MSF_ISA names."""
    names = [name for name, ok in _core.isas() if ok]
    assert _core.isa() == (os.environ.get("MSF_ISA") or names[0])
    assert names[-1] == "portable"


def _run_with_isa(value, code):
    import subprocess
    import sys
    env = dict(os.environ, MSF_ISA=value)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("isa", ISAS)
def test_msf_isa_forces_a_lesser_version(isa, tmp_path):
    """MSF_ISA=name runs every kernel of the model on that ISA; the model's output stays within the model
    tolerance of the reference (AVX2 and AVX-512 give the same bits, below; the portable version differs in
    its GEMM's separate multiply-adds and its own exp and erfc)."""
    if not dict(_core.isas())[isa]:
        pytest.skip(f"this CPU or build has no {isa}")
    code = (
        "import numpy as np, msf\n"
        "from msf import _core\n"
        "r = msf.Refiner.load('h36m17-3d', backend='cpp')\n"
        "kf = np.random.default_rng(0).normal(size=(3, r.config.n_keyframes, 51)).astype(np.float32) * 100\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, r.refine(kf))\n"
        "print(_core.isa())\n")
    done = _run_with_isa(isa, code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == isa
    r = msf.Refiner.load("h36m17-3d", backend="numpy")
    kf = np.random.default_rng(0).normal(size=(3, r.config.n_keyframes, 51)).astype(np.float32) * 100
    tensors = {k: np.asarray(v, np.float64) for k, v in r._model.tensors.items()}
    expected = ref.model_forward(kf.astype(np.float64), tensors, r.config.L)
    assert_close(np.load(tmp_path / "out.npy"), expected, atol_of_max=MODEL_ATOL_OF_MAX, what=f"model on MSF_ISA={isa}")


UNAVAILABLE = [name for name, ok in _core.isas() if not ok][:1] if HAS_CPP else []


@pytest.mark.parametrize("value", ["sse9"] + UNAVAILABLE)
def test_msf_isa_unknown_or_unavailable_is_an_error(value):
    code = ("import msf\n"
            "try:\n    msf.Refiner.load('h36m17-3d', backend='cpp')\n"
            "except msf.InputError as e:\n    print('refused:', e)\n")
    done = _run_with_isa(value, code)
    assert done.returncode == 0, done.stderr
    assert "refused: MSF_ISA=" + value in done.stdout, done.stdout


@pytest.mark.parametrize("isa", ISAS)
def test_kernels_pass_on_every_isa(isa):
    """The kernel tests (tests/test_kernels.py: edges, NaN, masked last columns) on each ISA this CPU has, each
    in its own process, so that the hand-written versions of every ISA are tested, not only the best one's."""
    import subprocess
    import sys
    if not dict(_core.isas())[isa]:
        pytest.skip(f"this CPU or build has no {isa}")
    here = os.path.dirname(os.path.abspath(__file__))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                           os.path.join(here, "test_kernels.py")], env=dict(os.environ, MSF_ISA=isa),
                          capture_output=True, text=True, timeout=600, cwd=here)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout


X86_VECTOR_ISAS = [name for name, ok in _core.isas() if ok and name in ("avx512", "avx2")] if HAS_CPP else []
# kernels whose every version must give the portable body's bits, then two shipped models, into `out`
_SAME_EVERYWHERE = (
    "import numpy as np, msf\n"
    "from msf import _core, _kernels as k\n"
    "rng = np.random.default_rng(0)\n"
    "x, r = (rng.standard_normal((51, 37)).astype(np.float32) for _ in range(2))\n"
    "w, b = (rng.standard_normal(37).astype(np.float32) for _ in range(2))\n"
    "out = {'layer_norm': k.layer_norm(x, w, b, r), 'layer_norm_plain': k.layer_norm(x, w, b, None),\n"
    "       'softmax': k.softmax(x.copy())}\n"
    "# C a power of two: the x86 versions multiply by 1/C, the portable body divides by C\n"
    "x, r = (rng.standard_normal((51, 64)).astype(np.float32) * 3 + 1 for _ in range(2))\n"
    "w, b = (rng.standard_normal(64).astype(np.float32) for _ in range(2))\n"
    "out.update(layer_norm_pow2=k.layer_norm(x, w, b, r), layer_norm_pow2_plain=k.layer_norm(x, w, b, None))\n"
    "for name in ('h36m17-3d', 'coco17-2d'):\n"
    "    m = msf.Refiner.load(name, backend='cpp')\n"
    "    kf = rng.standard_normal((5, m.config.n_keyframes, m.config.P)).astype(np.float32)\n"
    "    out[name] = m.refine(kf)\n")


@pytest.fixture(scope="module")
def outputs_on(tmp_path_factory):
    """isa -> _SAME_EVERYWHERE's outputs under MSF_ISA=isa, one process per ISA for the whole module."""
    cache = {}

    def run(isa):
        if isa not in cache:
            path = tmp_path_factory.mktemp(isa) / "out.npz"
            done = _run_with_isa(isa, _SAME_EVERYWHERE + f"np.savez({str(path)!r}, **out)\nprint(_core.isa())\n")
            assert done.returncode == 0, done.stderr
            assert done.stdout.split()[-1] == isa
            cache[isa] = dict(np.load(path))
        return cache[isa]
    return run


def _differing(a, b):
    return np.flatnonzero(a.view(np.uint32) != b.view(np.uint32))


def test_avx2_and_avx512_give_the_same_bits(outputs_on):
    """The x86 versions do the same operations in the same order, the FMAs where the code writes them (the
    build has -ffp-contract=off): every kernel, hence the whole model, is bit-identical on AVX2 and AVX-512."""
    if len(X86_VECTOR_ISAS) < 2:
        pytest.skip(f"this CPU or build has {X86_VECTOR_ISAS or 'neither AVX2 nor AVX-512'}, not both")
    first, second = X86_VECTOR_ISAS
    for key, value in outputs_on(first).items():
        differ = _differing(value, outputs_on(second)[key])
        assert differ.size == 0, (f"{key}: {differ.size} of {value.size} values differ between {first} and "
                                  f"{second}, first at flat index {differ[:1]}")


@pytest.mark.parametrize("isa", X86_VECTOR_ISAS)
def test_hand_written_layer_norm_and_softmax_equal_the_portable_body(isa, outputs_on):
    """LayerNorm, written by hand per ISA, and the row softmax, compiled per ISA from one body, do the portable
    body's arithmetic value for value (layer_norm.cpp's claim): bit-identical outputs."""
    if not dict(_core.isas()).get("portable"):
        pytest.skip("no portable version in this build")
    for key in ("layer_norm", "layer_norm_plain", "layer_norm_pow2", "layer_norm_pow2_plain", "softmax"):
        differ = _differing(outputs_on(isa)[key], outputs_on("portable")[key])
        assert differ.size == 0, f"{key}: {differ.size} values differ between {isa} and portable"
