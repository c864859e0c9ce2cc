"""CI check of the C/C++ embedding: installs the msf CMake package into a prefix, builds examples/c and
examples/cpp out of tree against it, runs both on a random model and compares what they print with the
Python API (msf.Refiner) on every available backend.

    python examples/check_examples.py [--work DIR]

Pass: max |example - python| <= 1e-5 * max |python| (the engine's tolerance, tests/tolerances.py) for
both examples and every backend. Exits non-zero on any build failure or mismatch; prints the figures.
"""
import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_inputs import msf, write_inputs  # noqa: E402  (msf from the install, else the source tree)

REPO = Path(__file__).resolve().parents[1]
ATOL_OF_MAX = 1e-5


def run(*cmd, capture: bool = False) -> str:
    print("+", " ".join(map(str, cmd)), flush=True)
    done = subprocess.run([str(c) for c in cmd], check=True, stdout=subprocess.PIPE if capture else None, text=True)
    return done.stdout


def read_text_array(text: str) -> np.ndarray:
    """The examples' file format: "B N P" then B*N*P numbers -> (B, N, P)."""
    header, _, body = text.partition("\n")
    shape = tuple(int(n) for n in header.split())
    values = np.array(body.split(), dtype=np.float64)
    if len(shape) != 3 or values.size != np.prod(shape):
        raise ValueError(f"malformed output: header {header!r}, {values.size} values")
    return values.reshape(shape)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "build" / "examples-check",
                        help="build directories, install prefix and inputs go here (default build/examples-check)")
    args = parser.parse_args()
    work = args.work.resolve()
    prefix = work / "prefix"
    cmake = os.environ.get("CMAKE", "cmake")
    shutil.rmtree(prefix, ignore_errors=True)  # only what this run installs

    run(cmake, "-S", REPO, "-B", work / "core", f"-DCMAKE_INSTALL_PREFIX={prefix}")
    run(cmake, "--build", work / "core", "-j2")
    run(cmake, "--install", work / "core", "--component", "msf_development")
    exes = {}
    for lang in ("c", "cpp"):
        build = work / f"example-{lang}"
        run(cmake, "-S", REPO / "examples" / lang, "-B", build, f"-DCMAKE_PREFIX_PATH={prefix}",
            "-DCMAKE_BUILD_TYPE=Release")
        run(cmake, "--build", build, "-j2")
        exes[lang] = build / f"msf_example_{lang}"

    model, keyframes_file = write_inputs(work / "inputs")
    keyframes = read_text_array(keyframes_file.read_text()).astype(np.float32)  # exactly what the examples read
    # %.9g round-trips float32: back in float32 the printed numbers are exactly what the examples computed
    outputs = {lang: read_text_array(run(exe, model, keyframes_file, capture=True)).astype(np.float32)
               for lang, exe in exes.items()}

    print(f"msf {msf.__version__} from {Path(msf.__file__).parent}; backends {msf.backends()}")
    failed = False
    for backend in msf.backends():
        expected = msf.Refiner.load(model, backend=backend).refine(keyframes).astype(np.float64)
        bound = ATOL_OF_MAX * np.abs(expected).max()
        for lang, got in outputs.items():
            if got.shape != expected.shape:
                print(f"{lang} example vs {backend}: shape {got.shape} != {expected.shape}: FAIL")
                failed = True
                continue
            err = np.abs(got.astype(np.float64) - expected).max()
            ok = err <= bound
            failed |= not ok
            print(f"{lang} example vs python {backend}: shape {got.shape}, max abs error {err:.3g}, "
                  f"bound {bound:.3g} ({ATOL_OF_MAX:g} * max|out| {np.abs(expected).max():.4g}), "
                  f"ratio {err / bound:.3g}: {'ok' if ok else 'FAIL'}")
    print(f"c and cpp outputs identical: {np.array_equal(outputs['c'], outputs['cpp'])}")
    print("FAILED" if failed else "all examples match the Python API")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
