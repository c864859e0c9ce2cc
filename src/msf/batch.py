"""Many inputs in one run: worker processes, one progress line, atomic outputs, resumable, clean stops.

    from msf import batch
    summary = batch.run(["videos/", "more/*.json"], "out", recover_file, refiner, jobs=2)
    summary.status                          # 0, 1 if a file failed, 128 + signal if stopped by one

`recover_file(refiner, source, output, progress) -> frames` recovers one input (a file, or an OpenPose
folder) into `output`, a path of the output's name in a hidden temporary folder, and returns how many
frames it wrote; it should call `progress()` now and then (msf recover: before each sequence), which
raises Stopped once the run is being stopped. It must pickle (a module-level function, or a functools.partial
of one with picklable arguments), and so must the Refiner: each of `jobs` spawned workers unpickles both
once, in the pool's initializer.

- Inputs: files as given; directories searched recursively for .npy, .npz and .json files and OpenPose
  folders (a folder of *_keypoints.json is one input), leaving out hidden names and anything under the
  output folder; globs (`**` included) matched as by `glob.glob(recursive=True)`. Each output is
  OUTDIR / the input's name relative to its directory argument (or the glob's fixed leading folders).
- A bad input is reported on one line (`<desc>: failed: FILE: reason`) and the others go on. Warnings
  from the workers are re-issued in this process, one per line.
- Outputs appear atomically (msf.files.atomic_output). An output that exists is complete and is skipped
  unless `overwrite`, so a stopped run resumes where it stopped. Leftover temporary folders of earlier
  runs killed outright (SIGKILL) are removed from the output folders first, so two runs must not write
  into one output folder at the same time.
- SIGINT and SIGTERM stop the run: inputs not started are left, workers abandon theirs at the next
  progress() call, and no temporary file remains. A worker that dies (killed, out of memory) stops the
  run the same way.
"""
from __future__ import annotations

import glob
import multiprocessing
import os
import pickle
import re
import signal
import sys
import threading
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from . import detectors
from .errors import Error, InputError
from .files import FORMATS, TEMPORARY_PREFIX, atomic_output, remove, temporary_folder
from .inputs import is_integer

RecoverFile = Callable[..., int]  # (refiner, source: Path, output: Path, progress: Callable[[], None]) -> frames
_CHECK_EVERY = 0.05  # seconds between progress()'s looks at the stop flag (an Event costs a lock)
_STALE = re.compile(re.escape(TEMPORARY_PREFIX) + r"\d+-")


class Stopped(Exception):
    """Raised by progress() inside recover_file when the run is being stopped (SIGINT, SIGTERM)."""


@dataclass
class Summary:
    """What a run did: counts of inputs, frames written, seconds, and the signal that stopped it (or None)."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    not_done: int = 0  # left by a stop: not started, or abandoned
    frames: int = 0
    seconds: float = 0.0
    signal: int | None = None
    broken: bool = False  # a worker died

    @property
    def status(self) -> int:
        """The exit status: 128 + the signal when one stopped the run, else 1 when anything failed, else 0."""
        if self.signal is not None:
            return 128 + self.signal
        return 1 if self.failed or self.broken else 0


def _is_openpose_folder(path: Path) -> bool:
    return detectors.sniff(path) == "openpose"


def _walk(top: Path, base: Path, outdir: Path | None, visited: set[Path]) -> Iterable[tuple[Path, Path]]:
    """(input, name relative to base) under a directory, sorted, hidden names and the output folder left out;
    a folder reached again through a symlink (a loop: two links to "." made the walk exponential) is not
    walked again."""
    if top.resolve() in visited:
        return
    visited.add(top.resolve())
    if _is_openpose_folder(top):
        yield top, top.relative_to(base) if top != base else Path(top.resolve().name)
        return
    for entry in sorted(top.iterdir()):
        if entry.name.startswith(".") or entry.resolve() == outdir:
            continue
        if entry.is_dir():
            yield from _walk(entry, base, outdir, visited)
        elif entry.suffix.lower() in FORMATS:
            yield entry, entry.relative_to(base)


def _glob_base(pattern: str) -> Path:
    """The leading folders of a glob that hold no wildcard: matches are named relative to them."""
    fixed = []
    for part in Path(pattern).parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def expand(inputs: Iterable[str | os.PathLike], outdir: str | os.PathLike | None) -> list[tuple[Path, Path]]:
    """(input, output) pairs for files, directories (recursive) and globs (outdir None: outputs are the
    relative names alone); InputError for an argument that names nothing, for no inputs at all, and for
    two inputs that would write the same output."""
    outdir = Path(outdir) if outdir is not None else None
    resolved_outdir = outdir.resolve() if outdir is not None else None
    found: dict[Path, tuple[Path, Path]] = {}  # by output, in order
    seen: set[Path] = set()
    for item in map(os.fspath, inputs):
        path = Path(item)
        if path.is_file():
            pairs = [(path, Path(path.name))]
        elif path.is_dir():
            if path.resolve() == resolved_outdir:  # every input would count as done, or --overwrite replace it
                raise InputError(f"{item}: the output folder is this input folder: give -o another folder")
            pairs = list(_walk(path, path, resolved_outdir, set()))
        elif glob.has_magic(item):
            base = _glob_base(item)
            pairs = []
            for match in map(Path, sorted(glob.glob(item, recursive=True))):
                if match.is_dir():
                    pairs += _walk(match, base, resolved_outdir, set())
                elif resolved_outdir not in match.resolve().parents:
                    pairs.append((match, match.relative_to(base)))
            if not pairs:
                raise InputError(f"{item}: no file matches")
        else:
            raise InputError(f"{item}: no such file or directory")
        for source, name in pairs:
            if source.resolve() in seen:
                continue
            seen.add(source.resolve())
            output = outdir / name if outdir is not None else name
            if output.resolve() == source.resolve():
                raise InputError(f"{source} would be written over itself: give -o another folder")
            if output in found:
                raise InputError(f"{found[output][0]} and {source} would both be written to {output}: give "
                                 f"them separate runs, or their folders rather than the files")
            found[output] = (source, output)
    if not found:
        raise InputError(f"no input files ({', '.join(FORMATS)} or OpenPose folders) in "
                         f"{', '.join(map(os.fspath, inputs)) or 'the arguments'}")
    return list(found.values())


class Progress:
    """One line on stderr: inputs done of all, frames written, frames/s and an ETA from the input bytes left;
    nothing when stderr is not a terminal."""

    def __init__(self, inputs: int, size: int, desc: str):
        self.enabled = sys.stderr.isatty()
        self.inputs, self.size, self.desc = inputs, max(1, size), desc
        self.done = self.done_size = self.frames = 0
        self.start = self.shown = time.monotonic()

    def add(self, size: int, frames: int) -> None:
        self.done, self.done_size, self.frames = self.done + 1, self.done_size + size, self.frames + frames

    def show(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.shown < 0.2):
            return
        self.shown, elapsed = now, max(now - self.start, 1e-9)
        eta = "?"
        if self.done_size:
            seconds = int(elapsed * (self.size - self.done_size) / self.done_size)
            eta = f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        filled = min(30, int(30 * self.done_size / self.size))
        print(f"\r{self.desc} [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.inputs} files, "
              f"{self.frames:,} frames, {self.frames / elapsed:,.0f} frames/s, ETA {eta}\x1b[K",
              end="", file=sys.stderr, flush=True)

    def clear(self) -> None:
        """Before another line is printed; the next show() draws the bar again."""
        if self.enabled:
            print("\r\x1b[K", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled:
            self.show(force=True)
            print(file=sys.stderr, flush=True)


# worker side: set once per process by _init_worker (also in this process when jobs == 1)
_worker: dict = {}


def _init_worker(pickled: bytes, stop) -> None:
    """Unpickles the Refiner and recover_file once; a failure is kept and reported by every task."""
    if multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches every worker: the parent decides
    _worker.clear()
    _worker["stop"] = stop
    try:
        _worker["refiner"], _worker["recover_file"] = pickle.loads(pickled)
    except Exception as e:  # e.g. a shipped model that differs here: said once, by the parent
        _worker["error"] = f"cannot load the model in a worker process: {e}"


def _progress() -> Callable[[], None]:
    stop, checked = _worker["stop"], [time.monotonic()]

    def progress() -> None:
        now = time.monotonic()
        if now - checked[0] >= _CHECK_EVERY:
            checked[0] = now
            if stop.is_set():
                raise Stopped
    return progress


def _task(source: Path, output: Path, tag: str) -> tuple[str, object, list[str]]:
    """One input -> ("done", frames, warnings), ("failed", reason, warnings), ("stopped", None, []) or
    ("broken", reason, []) when this worker has no model."""
    if "error" in _worker:
        return "broken", _worker["error"], []
    if _worker["stop"].is_set():
        return "stopped", None, []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with atomic_output(output, tag) as temporary:
                frames = _worker["recover_file"](_worker["refiner"], source, temporary, _progress())
            result = ("done", int(frames))
        except Stopped:
            return "stopped", None, []
        except Exception as e:  # any failure of one input is that input's, reported on one line
            reason = str(e) if isinstance(e, (Error, OSError)) else f"{type(e).__name__}: {e}"
            reason = reason.replace(str(temporary_folder(output, tag) / output.name), str(output))
            for prefix in (f"{source}: ", f"{source} "):
                reason = reason.removeprefix(prefix)
            result = ("failed", " ".join(reason.split()))
    return (*result, [" ".join(str(w.message).split()) for w in caught])


def _jobs(jobs: int) -> int:
    if not is_integer(jobs) or jobs < 0:
        raise InputError(f"jobs must be an integer >= 0 (0: one per core), got {jobs!r}")
    if jobs:
        return int(jobs)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _remove_stale(outputs: Iterable[Path]) -> None:
    """Temporary folders left by runs killed outright, in the folders this run writes to."""
    for folder in {o.parent for o in outputs}:
        if folder.is_dir():
            for entry in folder.iterdir():
                if _STALE.match(entry.name):
                    remove(entry)


class _Stopper:
    """SIGINT/SIGTERM set the stop event (and are remembered) while the run is on; restored afterwards."""

    def __init__(self, stop):
        self.stop, self.signal, self.previous = stop, None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signal = self.signal or signum
        self.stop.set()

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def run(inputs: Iterable[str | os.PathLike], outdir: str | os.PathLike, recover_file: RecoverFile, refiner, *,
        jobs: int = 1, overwrite: bool = False, desc: str = "msf") -> Summary:
    """Recovers every input (see the module docstring) into outdir with `jobs` processes (0: one per core;
    1: in this process). Messages, the progress line and the summary go to stderr, prefixed with desc.
    Raises InputError before anything runs for bad arguments (see expand); the failures of single
    inputs are counted in the Summary instead."""
    jobs = _jobs(jobs)
    if Path(outdir).exists() and not Path(outdir).is_dir():
        raise InputError(f"{outdir} is a file: the outputs of several inputs go into a folder")
    pairs = expand(inputs, outdir)
    summary, started = Summary(), time.monotonic()
    _remove_stale(output for _, output in pairs)
    todo = []
    for source, output in pairs:
        if output.exists() and not overwrite:
            summary.skipped += 1
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            todo.append((source, output, _size(source)))
    progress = Progress(len(todo), sum(size for *_, size in todo), desc)
    tag = str(os.getpid())

    def report(source: Path, size: int, kind: str, value, messages: list[str]) -> None:
        cleared = bool(messages) or kind in ("failed", "broken")
        if cleared:  # the lines below replace the progress line, drawn again after them
            progress.clear()
        for message in messages:
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        if kind == "done":
            summary.done, summary.frames = summary.done + 1, summary.frames + value
            progress.add(size, value)
        elif kind == "failed":
            summary.failed += 1
            print(f"{desc}: failed: {source}: {value}", file=sys.stderr, flush=True)
            progress.add(size, 0)
        else:
            summary.not_done += 1
            if kind == "broken" and not summary.broken:
                summary.broken = True
                print(f"{desc}: error: {value}", file=sys.stderr, flush=True)
        progress.show(force=cleared)

    pickled = pickle.dumps((refiner, recover_file))
    if jobs == 1:
        stop = threading.Event()
        _init_worker(pickled, stop)
    else:
        stop = multiprocessing.get_context("spawn").Event()
    with _Stopper(stop) as stopper:
        try:
            if jobs == 1:
                for source, output, size in todo:
                    report(source, size, *_task(source, output, tag))
                    if summary.broken:
                        stop.set()
            else:
                _run_pool(todo, jobs, pickled, stop, tag, report)
        finally:
            for source, output, size in todo:  # abandoned or killed tasks; a finished one has no folder left
                remove(temporary_folder(output, tag))
            _worker.clear()
            progress.close()
    summary.signal, summary.seconds = stopper.signal, time.monotonic() - started
    _print_summary(summary, desc)
    return summary


_WORKER_DIED = "a worker process died (killed, or out of memory); stopping"


def _run_pool(todo, jobs: int, pickled: bytes, stop, tag: str, report) -> None:
    context = multiprocessing.get_context("spawn")  # fork would copy this process's threads and locks
    with ProcessPoolExecutor(min(jobs, max(1, len(todo))), mp_context=context, initializer=_init_worker,
                             initargs=(pickled, stop)) as pool:
        futures, broken = {}, False
        for i, (source, output, size) in enumerate(todo):
            try:
                futures[pool.submit(_task, source, output, tag)] = (source, size)
            except BrokenProcessPool:  # a worker died while the later inputs were still being handed out
                for source, _, size in todo[i:]:
                    report(source, size, "broken", _WORKER_DIED, [])
                broken = True
                stop.set()
                break
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in finished:
                source, size = futures[future]
                if future.cancelled():
                    report(source, size, "stopped", None, [])
                    continue
                try:
                    result = future.result()
                except BrokenProcessPool:
                    result, broken = ("broken", _WORKER_DIED, []), True
                report(source, size, *result)
                if result[0] == "broken":
                    stop.set()
            if stop.is_set():
                for future in pending:
                    future.cancel()
        if broken:
            # The executor stops its workers when one dies, but not one it was still starting (submit starts
            # them one by one), and then waits for that one forever (CPython 3.11); end them all here.
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.kill()


def _size(path: Path) -> int:
    """Bytes of an input (a folder's files summed): the progress line's measure of work; 0 for one that
    cannot be read (a dangling link, a file gone), whose own task then fails and is reported."""
    try:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.iterdir() if p.is_file())
        return path.stat().st_size
    except OSError:
        return 0


def _print_summary(summary: Summary, desc: str) -> None:
    rate = f" ({summary.frames / summary.seconds:,.0f} frames/s)" if summary.seconds > 0 and summary.frames else ""
    line = (f"{desc}: {summary.done} done, {summary.failed} failed, {summary.skipped} skipped; "
            f"{summary.frames:,} frames in {summary.seconds:.1f} s{rate}")
    if summary.signal is not None or summary.broken:
        cause = signal.Signals(summary.signal).name if summary.signal is not None else "a worker died"
        line += f"; stopped ({cause}) with {summary.not_done} not done: run again to resume"
    print(line, file=sys.stderr, flush=True)
