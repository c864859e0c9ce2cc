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
    tolerance of the reference (the versions differ only in fused vs separate multiply-adds)."""
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
