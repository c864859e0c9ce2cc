"""Whole data sets, end to end: frames/s of `msf recover DIR -o OUT` with --jobs 1 and --jobs 2, and of
msf.ray with 2 actors on a local cluster, on one synthetic data set, side by side (issue 18).

    python benchmarks/scale.py [--tracks 200] [--frames 3001] [--model h36m17-3d] [--backend cpp]

The data set: TRACKS .npy files of keyframes (frames 0, 10, ..., FRAMES - 1: random-walk 3D poses in
mm) in a temporary folder. The msf recover rows time the whole command in a subprocess (Python start,
model load, spawning workers, reading, recovering, writing every output). The Ray row times
msf.ray.from_files -> recover -> every row's frames back on the driver, on a cluster already started
(its start is given apart): actors start, read, recover; nothing is written. Also measured: the rate of
Refiner.recover alone on one core (no files), and Ray's overhead per run and per batch (data sets of
one-keyframe files, where recovering costs nothing, in few and in many batches), which give what N
machines would do. Needs msf[ray] for the Ray
rows (skipped without it). Prints a markdown table.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import msf


def write_data_set(folder: Path, tracks: int, n_frames: int, K: int) -> None:
    rng = np.random.default_rng(0)
    count = len(msf.keyframe_indices(n_frames, K))
    for i in range(tracks):
        walk = np.cumsum(rng.normal(0, 5, (count, 17, 3)), axis=0) + rng.normal(0, 200, (1, 17, 3))
        np.save(folder / f"track{i:04d}.npy", walk)


def time_cli(folder: Path, out: Path, jobs: int, args) -> float:
    command = [sys.executable, "-m", "msf", "recover", str(folder), "-o", str(out), "--model", args.model,
               "--backend", args.backend, "--n-frames", str(args.frames), "--jobs", str(jobs)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return seconds


def time_ray(folder: Path, refiner, actors: int, batch_size: int) -> tuple[float, int, list]:
    import msf.ray

    start = time.perf_counter()
    rows = list(msf.ray.recover(msf.ray.from_files([folder]), refiner, actors=actors,
                                batch_size=batch_size).iter_rows())
    return time.perf_counter() - start, sum(len(r["frames"]) for r in rows), rows


def core_rate(refiner, n_frames: int, K: int) -> float:
    """frames/s of Refiner.recover on one track, one thread, best of 3."""
    kf = np.random.default_rng(1).normal(0, 200, (len(msf.keyframe_indices(n_frames, K)), 17, 3))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        refiner.recover(kf, n_frames)
        best = min(best, time.perf_counter() - start)
    return n_frames / best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=200)
    parser.add_argument("--frames", type=int, default=3001, help="frames per track (video length)")
    parser.add_argument("--model", default="h36m17-3d")
    parser.add_argument("--backend", default="cpp")
    parser.add_argument("--batch-size", type=int, default=8, help="files per Ray batch")
    args = parser.parse_args(argv)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    refiner = msf.Refiner.load(args.model, backend=args.backend)
    K, total = refiner.config.K, args.tracks * args.frames
    rows = []
    with tempfile.TemporaryDirectory(prefix="msf-scale-") as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        write_data_set(folder, args.tracks, args.frames, K)
        per_core = core_rate(refiner, args.frames, K)
        for jobs in (1, 2):
            seconds = time_cli(folder, Path(tmp) / f"out{jobs}", jobs, args)
            rows.append((f"`msf recover DIR -o OUT --jobs {jobs}`", seconds))
        extra = [f"- Refiner.recover alone, one core, no files: {per_core:,.0f} frames/s"]
        try:
            import ray
        except ImportError:
            extra.append("- Ray: not installed (pip install \"msf[ray]\"); no Ray row")
        else:
            start = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
            ray.data.DataContext.get_current().enable_progress_bars = False
            started = time.perf_counter() - start
            seconds, frames, results = time_ray(folder, refiner, 2, args.batch_size)
            assert frames == total, (frames, total)
            for row in results[:5]:  # the same numbers as the command wrote
                expected = np.load(Path(tmp) / "out1" / row["source"]).reshape(len(row["frames"]), -1)
                assert np.array_equal(row["frames"], expected), row["source"]
            rows.append((f"msf.ray, 2 actors, batches of {args.batch_size} files", seconds))
            tiny = Path(tmp) / "tiny"
            tiny.mkdir()
            write_data_set(tiny, args.tracks, 1, K)
            # the same runs where recovering costs nothing, in few and in many batches: start-up and per batch
            few, many = -(-args.tracks // args.batch_size), args.tracks
            few_seconds = time_ray(tiny, refiner, 2, args.batch_size)[0]
            many_seconds = time_ray(tiny, refiner, 2, 1)[0]
            per_batch = 2 * (many_seconds - few_seconds) / (many - few)  # of one actor's time: 2 run at once
            extra += [f"- Ray: local 2-CPU cluster started in {started:.1f} s (not in the table)",
                      f"- Ray overhead, from {args.tracks} one-keyframe files in {few} and in {many} batches "
                      f"({few_seconds:.2f} s and {many_seconds:.2f} s): {per_batch * 1e3:.1f} ms of an actor's time "
                      f"per batch, and {few_seconds - few * per_batch / 2:.2f} s per run (actors starting, the "
                      f"Refiner unpickled in each, the first batches scheduled)"]
            ray.shutdown()
    print(f"## Data sets: {args.tracks} tracks x {args.frames:,} frames ({total:,} frames), model {args.model}, "
          f"backend {args.backend}\n")
    print(f"- machine: {os.cpu_count()} logical cores; load average at the start: {load}")
    print(f"- command: python benchmarks/scale.py --tracks {args.tracks} --frames {args.frames} --model "
          f"{args.model} --backend {args.backend}\n")
    print("| run | wall (s) | frames/s | x jobs 1 |")
    print("| --- | --- | --- | --- |")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {total / seconds:,.0f} | {rows[0][1] / seconds:.2f} |")
    print()
    print("\n".join(extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
