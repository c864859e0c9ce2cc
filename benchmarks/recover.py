"""Whole videos end to end: Refiner.recover frames/s and peak memory, beside ONNX Runtime on the same windows.

    python benchmarks/recover.py [--frames 100000,1000000] [--model h36m17-3d] [--threads 1,2]
                                 [--tracks 1] [--stride 1] [--ort-frames 100000] [--json out.json]

Each measurement runs in a fresh Python process, so that its peak resident memory (VmHWM) is its own.
The input is what a user holds: float64 keyframes (M, J, D) in millimetres on msf.keyframe_indices(n, K),
a motion-capture clip (examples/data) played back and forth with 20 mm of detector jitter; the output is
the (n, J, D) float32 array recover returns (n*J*D*4 bytes, part of every peak below).

Rows:
- `msf recover`: Refiner.recover(keyframes, n, stride=...) end to end (filling, normalisation, windows,
  the forward, overlap mean, output), threads = the Refiner's `threads=`.
- `msf refine (same windows)`: only the forward on the windows recover runs, in batches of the size
  recover uses; `onnxruntime (same windows)`: ONNX Runtime (opset-17 export of tools/torch_model.py with
  the same weights) on exactly those windows and batches, intra_op_num_threads = threads. Both stack
  each batch from the normalised keyframe grid as recover does, untimed; only the forward is timed.
frames/s is n / seconds for every row (frames delivered per second of the video's processing).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "examples" / "data" / "cmu_05_02.npy"


def peak_rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024


def rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


def keyframes(n: int, K: int, tracks: int) -> np.ndarray:
    """(M, J, D) float64, or (tracks, M, J, D): the clip played back and forth, 20 mm jitter per joint."""
    import msf
    clip = np.load(CLIP).astype(np.float64)
    frames = msf.keyframe_indices(n, K)
    period = 2 * (len(clip) - 1)
    out = []
    for t in range(tracks):
        phase = (frames + 37 * t) % period
        index = np.where(phase < len(clip), phase, period - phase)
        kf = clip[index]
        kf += np.random.default_rng(t).normal(0, 20, kf.shape)
        out.append(kf)
    return out[0] if tracks == 1 else np.stack(out)


def child_recover(args) -> dict:
    import msf
    refiner = msf.Refiner.load(args.model, threads=args.threads)
    kf = keyframes(args.n, refiner.config.K, args.tracks)
    before = rss_mib()
    start = time.perf_counter()
    out = refiner.recover(kf, args.n, stride=args.stride)
    seconds = time.perf_counter() - start
    return {"row": "msf recover", "seconds": seconds, "frames_per_s": args.n * args.tracks / seconds,
            "rss_before_mib": before, "peak_rss_mib": peak_rss_mib(), "input_mib": kf.nbytes / 2**20,
            "output_mib": out.nbytes / 2**20, "backend": refiner.backend}


def window_batches(refiner, kf: np.ndarray, n: int, stride: int, batch: int):
    """The windows recover runs for one track (no missing joints), in batches of `batch`, as float32."""
    from msf import recover
    from msf.keyframes import extrapolate_to_grid, last_off_grid
    c = refiner.config
    roots = refiner.convention.root_indices(kf.shape[1])
    grid = kf - kf[:, roots].mean(axis=1, keepdims=True) if roots else kf.copy()
    grid = grid.reshape(len(grid), -1)
    if last_off_grid(n, c.K):  # off-grid last detection: the grid point after it, extrapolated
        grid[-1] = extrapolate_to_grid(grid[-1], grid[-2], (len(grid) - 2) * c.K, n - 1, c.K)
    if len(grid) < c.Q + 1:
        grid = np.concatenate([grid, np.repeat(grid[-1:], c.Q + 1 - len(grid), axis=0)])
    starts = list(range(0, len(grid) - c.Q, stride))
    if starts[-1] + c.Q < len(grid) - 1:
        starts.append(len(grid) - 1 - c.Q)
    view = np.lib.stride_tricks.sliding_window_view(grid, (c.Q + 1, grid.shape[1]))[:, 0]
    step = getattr(recover, "WINDOWS_PER_CALL", batch)
    for i in range(0, len(starts), step):
        yield np.ascontiguousarray(view[starts[i:i + step]], dtype=np.float32)


def child_windows(args) -> dict:
    import msf
    refiner = msf.Refiner.load(args.model, threads=args.threads)
    kf = keyframes(args.n, refiner.config.K, 1)
    if args.row == "msf refine (same windows)":
        run = refiner.refine
    else:
        import onnxruntime as ort
        run = ort_session(refiner, args.model, args.threads, ort)
    seconds, windows = 0.0, 0
    for batch in window_batches(refiner, kf, args.n, args.stride, 256):
        start = time.perf_counter()
        run(batch)
        seconds += time.perf_counter() - start
        windows += len(batch)
    result = {"row": args.row, "seconds": seconds, "frames_per_s": args.n / seconds, "windows": windows,
              "peak_rss_mib": peak_rss_mib()}
    if args.row.startswith("onnxruntime"):
        result["version"] = ort.__version__
    return result


def ort_session(refiner, model: str, threads: int, ort):
    import io
    import warnings

    import torch
    sys.path.insert(0, str(ROOT / "tools"))
    from torch_model import PoseRefinementModel
    c = refiner.config
    module = PoseRefinementModel(c.K, c.Q, c.P, c.C, c.L, expansion_factor=c.ffn_hidden // c.C,
                                 reduce_token=c.T // c.d_t, reduce_channel=c.C // c.d_c)
    # value_reduce of an unreduced branch (d == N) is never read; msf does not keep it
    missing, unexpected = module.load_state_dict({k: torch.from_numpy(np.array(v))
                                                  for k, v in refiner._model.tensors.items()}, strict=False)
    assert not unexpected and all("value_reduce" in k for k in missing), (missing, unexpected)
    module.eval()

    class Keyframes(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, kf):
            return self.m.forward_keyframes(kf)

    example = torch.zeros((2, c.n_keyframes, c.P))
    onnx = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Keyframes(module).eval(), (example,), onnx, dynamo=False, opset_version=17,
                          input_names=["kf"], output_names=["out"], dynamic_axes={"kf": {0: "B"}, "out": {0: "B"}})
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(onnx.getvalue(), options, providers=["CPUExecutionProvider"])
    probe = next(window_batches(refiner, keyframes(1000, c.K, 1), 1000, 1, 8))
    got, want = session.run(None, {"kf": probe})[0], refiner.refine(probe)
    assert np.abs(got - want).max() <= 1e-3 * np.abs(want).max(), "ONNX export disagrees with msf"
    return lambda kf: session.run(None, {"kf": kf})[0]


def run_child(argv: list[str], python: str = sys.executable) -> dict:
    done = subprocess.run([python, __file__, "--child", *argv], capture_output=True, text=True)
    if done.returncode:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", default="100000,1000000")
    parser.add_argument("--model", default="h36m17-3d")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--tracks", type=int, default=1)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--ort-frames", default="100000", help="lengths to also run the windows-only rows on "
                        "('' for none)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--python", default=sys.executable, help="interpreter for the `msf recover` rows "
                        "(e.g. another installation, to compare versions)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--row", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.threads = int(args.threads)
        result = child_recover(args) if args.row == "msf recover" else child_windows(args)
        print(json.dumps(result))
        return

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    import msf
    core = msf.backend._core
    isa = core.isa() if core is not None else "n/a"
    print("# msf recover benchmark\n")
    print(f"- machine: {cpu}, {os.cpu_count()} logical cores; GEMM ISA {isa}; load average {os.getloadavg()}")
    print(f"- command: {' '.join([Path(sys.executable).name] + sys.argv)}")
    print(f"- model {args.model}, stride {args.stride}, {args.tracks} track(s), float64 keyframes in, "
          f"float32 frames out\n")
    print("| frames | threads | row | seconds | frames/s | vs ORT | peak RSS (MiB) | of which output | RSS before |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    ort_lengths = {int(v) for v in args.ort_frames.split(",") if v}
    results = []
    for n in (int(v) for v in args.frames.split(",")):
        for threads in (int(v) for v in args.threads.split(",")):
            common = ["--n", str(n), "--threads", str(threads), "--model", args.model, "--stride", str(args.stride),
                      "--tracks", str(args.tracks)]
            rows = ["msf recover"] + (["msf refine (same windows)", "onnxruntime (same windows)"]
                                      if n in ort_lengths and args.tracks == 1 else [])
            found = {row: run_child(common + ["--row", row], args.python if row == "msf recover" else sys.executable)
                     for row in rows}
            ort_fps = found.get("onnxruntime (same windows)", {}).get("frames_per_s")
            for row, r in found.items():
                r.update(frames=n, threads=threads, row=row)
                results.append(r)
                if "error" in r:
                    print(f"| {n:,} | {threads} | {row} | {r['error']} | | | | | |")
                    continue
                ratio = f"{r['frames_per_s'] / ort_fps:.2f}x" if ort_fps else ""
                out = f"{r['output_mib']:.0f}" if "output_mib" in r else ""
                before = f"{r['rss_before_mib']:.0f}" if "rss_before_mib" in r else ""
                print(f"| {n:,} | {threads} | {row} | {r['seconds']:.2f} | {r['frames_per_s']:,.0f} | {ratio} "
                      f"| {r['peak_rss_mib']:.0f} | {out} | {before} |", flush=True)
    print(f"\nload average at the end: {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps({"machine": cpu, "isa": isa, "results": results}, indent=2))


if __name__ == "__main__":
    main()
