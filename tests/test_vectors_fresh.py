"""The C++ tests' data (cpp/tests/data/vectors.txt, model.safetensors) is what cpp/tests/make_vectors.py writes
now: a change to msf.reference, to the generator or to its inputs must come with regenerated files
(`python cpp/tests/make_vectors.py`).

model.safetensors and every float32 input array (9 significant digits) must be the same bytes. The expected
outputs are the float64 reference written with 17 digits; their matrix products go through NumPy's BLAS, whose
kernels (chosen by CPU) sum in different orders, so their last digit or two can differ between machines: they
must agree to 1e-13 of each array's largest value (the C++ tests check float32 results to ~1e-6)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT

GENERATOR = ROOT / "cpp" / "tests" / "make_vectors.py"
DATA = ROOT / "cpp" / "tests" / "data"
FILES = ("vectors.txt", "model.safetensors")
OUTPUT_RTOL_OF_MAX = 1e-13

pytestmark = pytest.mark.skipif(not GENERATOR.is_file() or not all((DATA / f).is_file() for f in FILES),
                                reason="needs the repository's cpp/tests (make_vectors.py and data/)")


def generate(out: Path) -> None:
    result = subprocess.run([sys.executable, str(GENERATOR), str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"make_vectors.py failed:\n{result.stderr}"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vectors")
    generate(out)
    return out


def arrays(text: str) -> list[tuple[str, list[list[str]]]]:
    """vectors.txt as [(header `name ndim dim...`, value lines split into tokens)], in file order."""
    lines = text.splitlines()
    assert lines and lines[0].startswith("#"), "vectors.txt starts with its comment line"
    out, i = [], 1
    while i < len(lines):
        header = lines[i]
        fields = header.split()
        ndim = int(fields[1])
        count = int(np.prod([int(d) for d in fields[2:2 + ndim]]))
        rows, seen, i = [], 0, i + 1
        while seen < count:
            rows.append(lines[i].split())
            seen += len(rows[-1])
            i += 1
        out.append((header, rows))
    return out


def significant_digits(token: str) -> int:
    mantissa = token.lower().lstrip("+-").split("e")[0].replace(".", "").lstrip("0")
    return len(mantissa)


def test_model_file_is_what_the_generator_writes(fresh):
    assert (fresh / "model.safetensors").read_bytes() == (DATA / "model.safetensors").read_bytes(), (
        "cpp/tests/data/model.safetensors is stale: rerun python cpp/tests/make_vectors.py")


def test_vectors_are_what_the_generator_writes(fresh):
    committed_text = (DATA / "vectors.txt").read_text()
    fresh_text = (fresh / "vectors.txt").read_text()
    if fresh_text == committed_text:
        return
    committed, regenerated = arrays(committed_text), arrays(fresh_text)
    assert committed_text.splitlines()[0] == fresh_text.splitlines()[0], "vectors.txt: another comment line"
    assert [h for h, _ in regenerated] == [h for h, _ in committed], (
        "cpp/tests/data/vectors.txt has other arrays than make_vectors.py writes: rerun it")
    for (header, want_rows), (_, got_rows) in zip(committed, regenerated):
        name = header.split()[0]
        if got_rows == want_rows:
            continue
        assert [len(r) for r in got_rows] == [len(r) for r in want_rows], f"{name}: other line layout"
        want_tokens = [t for r in want_rows for t in r]
        got_tokens = [t for r in got_rows for t in r]
        # float32 inputs are written with 9 significant digits and are the same bytes on every machine
        assert max(map(significant_digits, got_tokens)) > 9, (
            f"{name}: a float32 input differs from what make_vectors.py writes: rerun it")
        want = np.array(want_tokens, dtype=np.float64)
        got = np.array(got_tokens, dtype=np.float64)
        same = got == want
        assert np.array_equal(np.isfinite(got), np.isfinite(want)) and same[~np.isfinite(want)].all(), name
        scale = np.abs(want[np.isfinite(want)]).max(initial=0.0)
        err = np.abs(got - want)[~same].max(initial=0.0)
        assert err <= OUTPUT_RTOL_OF_MAX * scale, (
            f"{name}: differs from the reference by {err:.3g} (largest value {scale:.3g}): stale test vectors, "
            "rerun python cpp/tests/make_vectors.py")


def test_generator_is_deterministic(fresh, tmp_path):
    """Seeded: a second run on the same machine writes the same bytes."""
    generate(tmp_path)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (fresh / name).read_bytes(), name
