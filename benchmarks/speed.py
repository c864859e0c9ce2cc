"""Speed of msf against PyTorch and ONNX Runtime on the same weights, side by side in one process.

    python benchmarks/speed.py [--quick] [--configs h36m,aist,pw3d] [--json out.json]

Engines: msf cpp, msf numpy, the official architecture in PyTorch eager (tools/torch_model.py), that
module through torch.jit.trace + optimize_for_inference, and ONNX Runtime on its opset-17 export.
Every engine gets the same random weights (written once to a .safetensors file) and the same keyframes;
each is checked against the float64 PyTorch model (or the float64 NumPy reference without torch).

Threads: NumPy's BLAS is pinned to 1 thread by the environment variables set below, before NumPy is
imported, so 'peak' (a 1024x1024 float32 matmul) is single-core sgemm; the 2-thread msf numpy row needs
threadpoolctl. torch uses torch.set_num_threads(n), ONNX Runtime intra_op_num_threads=n, msf cpp its
`threads=` load option when it has one. '% of peak' is against threads x the 1-core peak.
Lesser ISAs: with MSF_ISA=avx2 (msf's AVX2 kernels on an AVX-512 CPU), the peak and the PyTorch baselines
are held to AVX2 as well, by their own switches set below before they load (OpenBLAS's Haswell kernels,
ATen's avx2 kernels, MKL and oneDNN capped at AVX2), so that '% of peak' compares like with like. ONNX
Runtime has no such switch and runs its own choice (AVX-512 on such a CPU).
Timing: warm-up, then per cell `repeats` timed blocks of about budget/repeats seconds each, engines
interleaved within a config and thread count; a cell's time is the median block's time per call.
"""
import argparse
import copy
import datetime
import inspect
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
# The other libraries' switches for the ISA msf is told to use (MSF_ISA), where it is a lesser one.
ISA_CAPS = {"avx2": {"OPENBLAS_CORETYPE": "Haswell", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                     "ONEDNN_MAX_CPU_ISA": "AVX2"}}
for _var, _value in ISA_CAPS.get(os.environ.get("MSF_ISA", "").strip().lower(), {}).items():
    os.environ.setdefault(_var, _value)

# the thread and ISA variables must be set before NumPy (and torch) are imported
import numpy as np  # noqa: E402

import msf  # noqa: E402
from msf.config import OFFICIAL_CONFIGS, OFFICIAL_REDUCE, official_config  # noqa: E402
from msf.flops import FLOPS_FORMULA, flops_per_window  # noqa: E402
from msf.reference import model_forward  # noqa: E402

try:
    import torch
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from torch_model import random_model
except ImportError:
    torch = None
try:
    import onnxruntime as ort
except ImportError:
    ort = None
try:
    from threadpoolctl import threadpool_limits
except ImportError:
    threadpool_limits = None

CONFIGS = {name: dict(zip("KQPCL", OFFICIAL_CONFIGS[name])) for name in ("h36m", "aist", "pw3d")}
ENGINES = ("msf cpp", "msf numpy", "torch eager", "torch jit", "onnxruntime")
BASELINES = ("torch jit", "onnxruntime")
THREADS = (1, 2)
BATCH = 64
HAS_THREADS = "threads" in inspect.signature(msf.Refiner.load).parameters
# FLOPs per window: msf.flops.flops_per_window, the one source of the count and of its formula
FLOP_FORMULA = ("FLOPs per window (msf.flops.flops_per_window) = 2 x the multiply-adds of the matrix products:\n"
                + "\n".join("  " + line for line in FLOPS_FORMULA.splitlines()))


def make_weights(spec: dict, path: Path):
    """Writes random weights; returns (float32 torch module or None, float64 oracle: kf -> output)."""
    meta = {"format": "msf", "format_version": "1", "source": "benchmarks/speed.py: random weights"}
    if torch is not None:
        model = random_model(**spec, reduce_token=OFFICIAL_REDUCE["reduce_token"],
                             reduce_channel=OFFICIAL_REDUCE["reduce_channel"], dtype=torch.float32)
        msf.weights.write(path, {k: v.numpy() for k, v in model.state_dict().items()}, meta)
        return model, torch_runner(KeyframeModule(copy.deepcopy(model).double()), np.float64)
    config = official_config(**spec)
    rng = np.random.default_rng(0)
    tensors = {k: rng.standard_normal(s) / np.sqrt(s[-1]) for k, s in config.expected_shapes().items()}
    msf.weights.write(path, tensors, meta)
    f64 = {k: v.astype(np.float32).astype(np.float64) for k, v in tensors.items()}
    return None, lambda kf: model_forward(kf.astype(np.float64), f64, spec["L"])


class KeyframeModule(torch.nn.Module if torch else object):
    """The official module on keyframes (B, Q+1, P), the input every engine takes."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, kf):
        return self.model.forward_keyframes(kf)


def torch_runner(module, dtype=np.float32):
    def run(kf):
        with torch.inference_mode():
            return module(torch.from_numpy(kf.astype(dtype, copy=False))).numpy()
    return run


def build_engines(path: Path, model, example: np.ndarray) -> dict:
    """name -> factory(threads) -> callable or the reason it is n/a."""
    def msf_engine(backend):
        def make(n):
            if backend not in msf.backends():
                return f"n/a (backend {backend!r} not built)"
            if backend == "cpp" and n > 1 and not HAS_THREADS:
                return "n/a (no threads option yet)"
            if backend == "numpy" and n > 1 and threadpool_limits is None:
                return "n/a (threadpoolctl not installed: BLAS pinned to 1 thread)"
            return msf.Refiner.load(path, backend=backend, **({"threads": n} if HAS_THREADS else {})).refine
        return make

    engines = {"msf cpp": msf_engine("cpp"), "msf numpy": msf_engine("numpy")}
    if torch is None:
        return {**engines, **{e: lambda n: "n/a (torch not installed)" for e in ENGINES[2:]}}
    module = KeyframeModule(model).eval()
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jit = torch.jit.optimize_for_inference(torch.jit.trace(module, torch.from_numpy(example[:1])))
    engines.update({"torch eager": lambda n: torch_runner(module), "torch jit": lambda n: torch_runner(jit)})
    if ort is None:
        return {**engines, "onnxruntime": lambda n: "n/a (onnxruntime not installed)"}
    onnx = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy (TorchScript) exporter warns that it is deprecated
        torch.onnx.export(module, (torch.from_numpy(example),), onnx, dynamo=False, opset_version=17,
                          input_names=["kf"], output_names=["out"], dynamic_axes={"kf": {0: "B"}, "out": {0: "B"}})

    def ort_engine(n):
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = n, 1
        # ORT's idle intra-op threads spin, for 100 ms and more after a call (measured), and so took a core
        # from whichever engine was timed next in this process: msf's 2-thread calls then ran at 1.2-1.9x
        # their time alone. Without spinning, they sleep between calls, as in an application doing other work.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(onnx.getvalue(), options, providers=["CPUExecutionProvider"])
        return lambda kf: session.run(None, {"kf": kf})[0]
    return {**engines, "onnxruntime": ort_engine}


def set_threads(n: int) -> None:
    if torch is not None:
        torch.set_num_threads(n)
    if threadpool_limits is not None:
        threadpool_limits(limits=n, user_api="blas")


def bench(cells: dict, budget: float, repeats: int) -> dict:
    """cells: key -> (fn, arg). Seconds per call for each key: median over `repeats` interleaved blocks."""
    calls = {}
    for key, (fn, x) in cells.items():
        start, n = time.perf_counter(), 0
        while n < 3 or time.perf_counter() - start < budget / (2 * repeats):  # warm-up and calibration
            fn(x)
            n += 1
        calls[key] = max(1, round(budget / repeats / ((time.perf_counter() - start) / n)))
    blocks = {key: [] for key in cells}
    for _ in range(repeats):
        for key, (fn, x) in cells.items():
            start = time.perf_counter()
            for _ in range(calls[key]):
                fn(x)
            blocks[key].append((time.perf_counter() - start) / calls[key])
    return {key: statistics.median(b) for key, b in blocks.items()}


def python_overhead(refine, raw, kf: np.ndarray, seconds: float) -> tuple[float, float]:
    """(median of refine(one window) - raw C++ forward over back-to-back call pairs, median raw) in µs.
    The order within a pair alternates so that neither call gains from running second."""
    calls = [(refine, kf[0]), (raw, np.ascontiguousarray(kf[:1]))]
    extra, core, end = [], [], time.perf_counter() + seconds
    while len(extra) < 20 or time.perf_counter() < end:
        took = []
        for fn, x in calls:
            start = time.perf_counter()
            fn(x)
            took.append(time.perf_counter() - start)
        if calls[0][0] is not refine:
            took.reverse()
        extra.append(took[0] - took[1])
        core.append(took[1])
        calls.reverse()
    return statistics.median(extra) * 1e6, statistics.median(core) * 1e6


def sgemm_peak(repeats: int = 7) -> float:
    """Single-core float32 GFLOP/s of a 1024x1024 NumPy matmul (BLAS at 1 thread)."""
    a, b = (np.random.default_rng(i).standard_normal((1024, 1024), dtype=np.float32) for i in (0, 1))
    return 2 * 1024 ** 3 / bench({"mm": (lambda x: x @ b, a)}, 1.0, repeats)["mm"] / 1e9


def blas_core() -> str:
    """', OpenBLAS kernels <core>' as threadpoolctl reports NumPy's BLAS, or '' when it cannot tell."""
    if threadpool_limits is None:
        return ""
    from threadpoolctl import threadpool_info
    cores = [f"{i.get('internal_api', 'BLAS')} kernels {i['architecture']}" for i in threadpool_info()
             if i.get("user_api") == "blas" and i.get("architecture")]
    return ", " + cores[0] if cores else ""


def run_config(name: str, args) -> dict:
    spec = CONFIGS[name]
    path = Path(tempfile.mkdtemp()) / f"{name}.safetensors"
    model, oracle = make_weights(spec, path)
    config = msf.Refiner.load(path, backend="numpy").config
    flops = flops_per_window(config)
    kf = np.random.default_rng(1).standard_normal((BATCH, config.n_keyframes, config.P)).astype(np.float32)
    expected = oracle(kf)
    factories = build_engines(path, model, kf)
    rows = []
    for n in THREADS:
        set_threads(n)
        group, cells = [], {}
        for engine in ENGINES:
            fn = factories[engine](n)
            row = {"engine": engine, "threads": n}
            if isinstance(fn, str):
                row["note"] = fn
            else:
                out = np.concatenate([fn(kf[:1]), fn(kf)])
                row["rel_err"] = float(np.abs(out - np.concatenate([expected[:1], expected])).max()
                                       / np.abs(expected).max())
                cells.update({(engine, 1): (fn, kf[:1]), (engine, BATCH): (fn, kf)})
            group.append(row)
        times = bench(cells, args.budget, args.repeats)
        best = {b: min((times[e, b] for e in BASELINES if (e, b) in times), default=None) for b in (1, BATCH)}
        for row in (r for r in group if "note" not in r):
            t1, t64 = times[row["engine"], 1], times[row["engine"], BATCH] / BATCH
            row.update(latency_ms=t1 * 1e3, throughput=1 / t64, gflops_b1=flops / t1 / 1e9,
                       gflops_b64=flops / t64 / 1e9)
            if best[1] is not None:
                row.update(vs_best_b1=best[1] / t1, vs_best_b64=best[BATCH] / BATCH / t64)
        rows += group
    set_threads(1)
    result = {"config": spec, "T": config.T, "flops_per_window": flops, "rows": rows, "targets": []}
    refiner = msf.Refiner.load(path, backend="cpp") if "cpp" in msf.backends() else None
    raw = getattr(getattr(getattr(refiner, "_backend", None), "_model", None), "refine", None)
    name = "Python overhead of refine (batch 1)"
    if raw is None:
        result["targets"].append(target(name, None, "no C++ backend (refiner._backend._model.refine) to compare"))
    else:
        extra, core = python_overhead(refiner.refine, raw, kf, 2 * args.budget)
        result["python_overhead_us"] = extra
        result["targets"].append(target(name, extra < 20, f"{extra:.1f} µs beyond the C++ forward "
                                        f"({core:.1f} µs), median of paired calls; needs < 20 µs"))
    return result


def finish_config(result: dict, peak: float) -> None:
    """% of peak per row and the targets, against the run's peak (known only at its end)."""
    for row in (r for r in result["rows"] if "note" not in r):
        n = row["threads"]
        row.update(pct_peak_b1=100 * row["gflops_b1"] / (n * peak), pct_peak_b64=100 * row["gflops_b64"] / (n * peak))
    result["targets"] = targets(result["rows"], result["flops_per_window"], peak) + result["targets"]


def target(name: str, met, detail: str) -> dict:
    return {"target": name, "status": "n/a" if met is None else "met" if met else "missed", "detail": detail}


def targets(rows: list, flops: int, peak: float) -> list:
    """The issue's 1-thread targets for msf cpp, and its 2-thread scaling."""
    get = {(r["engine"], r["threads"]): r for r in rows}
    cpp = get["msf cpp", 1]
    found = []
    for batch, factor, share in ((1, 4, 0.70), (BATCH, 2, 0.75)):
        key = "gflops_b1" if batch == 1 else "gflops_b64"
        base = [(get[e, 1][key], e) for e in BASELINES if key in get[e, 1]]
        name = f"batch {batch}: >= {factor}x the best of torch jit/ORT, or >= {share:.0%} of peak"
        if key not in cpp or not base:
            found.append(target(name, None, "msf cpp or both baselines unavailable"))
            continue
        (speed, best), need = max(base), min(factor * max(base)[0], share * peak)
        found.append(target(name, cpp[key] >= need, f"msf cpp {cpp[key]:.2f} GFLOP/s = {cpp[key] / speed:.2f}x "
                            f"{best} ({speed:.2f}) and {100 * cpp[key] / peak:.0f}% of peak; needs {need:.2f} "
                            f"= min({factor}x {best}, {share:.0%} of {peak:.1f})"))
    two = get["msf cpp", 2]
    name = "2 threads: >= 1.8x the 1-thread throughput at batch 64"
    if "throughput" in two and "throughput" in cpp:
        scale = two["throughput"] / cpp["throughput"]
        found.append(target(name, scale >= 1.8, f"{two['throughput']:,.0f} / {cpp['throughput']:,.0f} windows/s "
                            f"= {scale:.2f}x"))
    else:
        found.append(target(name, None, two.get("note", cpp.get("note", ""))))
    return found


def print_config(name: str, r: dict) -> None:
    c = r["config"]
    print(f"\n## {name}: T = {r['T']}, C = {c['C']}, L = {c['L']}, P = {c['P']}, K = {c['K']}, Q = {c['Q']}; "
          f"{r['flops_per_window'] / 1e6:.2f} MFLOP per window\n")
    print("| engine | threads | batch-1 latency (ms) | batch-64 throughput (windows/s) | GFLOP/s b1 / b64 "
          "| × best of jit/ORT b1 / b64 | % of peak b1 / b64 | max rel err |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in r["rows"]:
        if "note" in row:
            print(f"| {row['engine']} | {row['threads']} | {row['note']} | | | | | |")
            continue
        ratio = f"{row['vs_best_b1']:.2f} / {row['vs_best_b64']:.2f}" if "vs_best_b1" in row else "n/a"
        flag = " **> 1e-4**" if row["rel_err"] > 1e-4 else ""
        print(f"| {row['engine']} | {row['threads']} | {row['latency_ms']:.3f} | {row['throughput']:,.0f} "
              f"| {row['gflops_b1']:.2f} / {row['gflops_b64']:.2f} | {ratio} "
              f"| {row['pct_peak_b1']:.0f} / {row['pct_peak_b64']:.0f} | {row['rel_err']:.1e}{flag} |")
    print(f"\nTargets ({name}, 1 thread unless stated):\n")
    for t in r["targets"]:
        print(f"- {t['status'].upper()}: {t['target']} — {t['detail']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small time budget (CI smoke run)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of " + ",".join(CONFIGS))
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    if unknown := [n for n in names if n not in CONFIGS]:
        parser.error(f"unknown configs {unknown}; choose from {list(CONFIGS)}")
    args.budget, args.repeats = (0.15, 3) if args.quick else (1.0, 5)

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
               platform.processor() or "unknown CPU")
    versions = {"python": platform.python_version(), "numpy": np.__version__, "msf": getattr(msf, "__version__", "?"),
                "torch": torch.__version__ if torch else "not installed",
                "onnxruntime": ort.__version__ if ort else "not installed"}
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith(("flags", "Features"))), [])
    simd = [f for f in ("avx512f", "avx2", "fma", "asimd") if f in flags]
    try:
        from msf import _core
        isa = f"{_core.isa()} (MSF_ISA={os.environ['MSF_ISA']})" if os.environ.get("MSF_ISA") else _core.isa()
    except ImportError:
        isa = "n/a (msf._core not built)"
    capped = ISA_CAPS.get(os.environ.get("MSF_ISA", "").strip().lower(), {})
    caps = ("; the others held to it by " + ", ".join(f"{v}={os.environ[v]}" for v in capped)) if capped else ""
    meta = {"machine": f"{cpu}, {os.cpu_count()} logical cores, SIMD flags {' '.join(simd) or 'none'}",
            "isa": f"msf cpp kernels on {isa}" + caps, "date": datetime.datetime.now().isoformat(" ", "seconds"),
            "versions": versions, "command": " ".join([Path(sys.executable).name] + sys.argv),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None, "msf_threads_option": HAS_THREADS}
    print("# msf speed benchmark\n")
    for key in ("machine", "isa", "date", "command", "load_average"):
        print(f"- {key}: {meta[key]}")
    print("- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if threadpool_limits is None:
        print("- threadpoolctl not installed: NumPy's BLAS stays at 1 thread (msf numpy 2-thread rows n/a)")
    sgemm_peak(1)  # warm-up: a CPU that was idle measures low for its first seconds
    peak_start = sgemm_peak()
    results = {name: run_config(name, args) for name in names}
    peak_end = sgemm_peak()
    peak = max(peak_start, peak_end)
    print(f"- peak (1-core float32 sgemm, NumPy 1024x1024 matmul, BLAS 1 thread{blas_core()}): {peak:.1f} GFLOP/s, "
          f"the larger of {peak_start:.1f} before and {peak_end:.1f} after the engines ran (% of peak and targets use "
          f"it)")
    print(f"\n{FLOP_FORMULA}")
    print("Ratios (×) are speed ÷ the faster of torch jit and ORT at the same thread count (> 1: msf faster).")
    for name, r in results.items():
        finish_config(r, peak)
        print_config(name, r)
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.2f}.")
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "peak_gflops": {"start": peak_start, "end": peak_end},
                                         "configs": results}, indent=2))


if __name__ == "__main__":
    main()
