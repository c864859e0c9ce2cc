"""`msf recover IN... -o OUTDIR` (msf.batch): folders and globs, bad inputs, resumable and interruptible runs."""
import io
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import msf
from helpers import lsp14_keyframes as keyframes
from msf import batch, cli, detectors
from tolerances import MODEL_ATOL_OF_MAX, assert_close

BROKEN = ("sub/garbage.npy", "bad.json", "sub/deeper/wrong_layout.npz")


def run_msf(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "msf", *map(str, args)], capture_output=True, text=True, **kwargs)


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def no_temporaries(folder: Path) -> bool:
    return not any(".msf-tmp-" in str(p) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def fifty(tmp_path_factory):
    """50 inputs in nested folders, every format, 3 of them broken."""
    root = tmp_path_factory.mktemp("fifty") / "in"
    for i in range(47):
        folder = root / ("", "sub", "sub/deeper")[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        n = 31 + 7 * i
        kf = keyframes(n, i)
        if i % 4 == 0:
            np.savez(folder / f"v{i}.npz", a=kf, b=keyframes(n + 10, 100 + i), b_n_frames=np.int64(n + 10))
        elif i % 4 == 1:
            doc = {"n_frames": n, "keyframes": np.where(np.isnan(kf), None, kf).tolist()}
            (folder / f"v{i}.json").write_text(json.dumps(doc))
        else:
            np.save(folder / f"v{i}.npy", kf)
    (root / BROKEN[0]).write_bytes(b"not an npy file")
    (root / BROKEN[1]).write_text('{"keyframes": "none"}')
    np.savez(root / BROKEN[2], a=np.zeros((5, 17, 2)))
    (root / "notes.txt").write_text("not an input")  # other file types in a folder are not inputs
    return root


def test_fifty_files_three_broken(tmp_path, fifty, lsp14_model_path):
    result = run_msf("recover", fifty, "-o", tmp_path / "out", "--model", lsp14_model_path, "--jobs", 2)
    assert result.returncode == 1, result.stderr
    failed = [line for line in result.stderr.splitlines() if line.startswith("msf recover: failed: ")]
    assert len(failed) == 3
    for name in BROKEN:  # one line each: the file, then the reason
        assert sum(line.startswith(f"msf recover: failed: {fifty / name}: ") for line in failed) == 1, failed
    assert "msf recover: 47 done, 3 failed, 0 skipped" in result.stderr and "Traceback" not in result.stderr
    out = files_under(tmp_path / "out")
    assert len(out) == 47 and no_temporaries(tmp_path / "out")
    for name, content in out.items():  # each identical to a run of `msf recover FILE -o FILE`
        single = tmp_path / "single" / name
        single.parent.mkdir(parents=True, exist_ok=True)
        assert cli.main(["recover", str(fifty / name), "-o", str(single), "--model", str(lsp14_model_path)]) == 0
        assert single.read_bytes() == content, name
    # a rerun skips what is complete; --overwrite redoes it, to the same bytes
    again = run_msf("recover", fifty, "-o", tmp_path / "out", "--model", lsp14_model_path)
    assert again.returncode == 1 and "0 done, 3 failed, 47 skipped" in again.stderr
    redo = run_msf("recover", fifty / "sub", "-o", tmp_path / "out" / "sub", "--model", lsp14_model_path,
                   "--overwrite", "--jobs", 0)
    assert "msf recover: 31 done, 2 failed, 0 skipped" in redo.stderr  # sub and sub/deeper
    assert files_under(tmp_path / "out") == out


def test_globs_files_and_collisions(tmp_path, fifty, lsp14_model_path):
    out = tmp_path / "out"
    result = run_msf("recover", f"{fifty}/**/v1*.npy", fifty / "sub/v19.npy", fifty / "v3.npy", "-o", out,
                     "--model", lsp14_model_path)
    assert result.returncode == 0, result.stderr
    matches = [str(p.relative_to(fifty)) for p in fifty.glob("**/v1*.npy")]  # named below the glob's folders
    assert len(matches) > 3 and sorted(files_under(out)) == sorted(matches + ["v3.npy"])
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "v3.npy").write_bytes((fifty / "v3.npy").read_bytes())
    result = run_msf("recover", fifty / "v3.npy", tmp_path / "x" / "v3.npy", "-o", out, "--model", lsp14_model_path)
    assert result.returncode == 1 and "would both be written to" in result.stderr
    for missing, message in ((tmp_path / "nothing.npy", "no such file or directory"),
                             (f"{tmp_path}/*.npy", "no file matches")):
        result = run_msf("recover", missing, fifty / "v3.npy", "-o", out, "--model", lsp14_model_path)
        assert result.returncode == 1 and message in result.stderr and result.stderr.count("\n") == 1
    result = run_msf("recover", fifty, "-o", out, "--model", lsp14_model_path, "--jobs", -1)
    assert result.returncode == 1 and "--jobs must be >= 0" in result.stderr


def test_output_folder_inside_the_input_folder_is_not_read(tmp_path, lsp14_model_path):
    np.save(tmp_path / "a.npy", keyframes(41, 1))
    for _ in range(2):
        result = run_msf("recover", tmp_path, "-o", tmp_path / "out", "--model", lsp14_model_path)
        assert result.returncode == 0, result.stderr
    assert sorted(files_under(tmp_path / "out")) == ["a.npy"]


def test_the_input_folder_as_output_folder_is_refused(tmp_path, lsp14_model_path):
    """-o the input folder skipped every input as done, and with --overwrite replaced the inputs."""
    np.save(tmp_path / "a.npy", keyframes(41, 1))
    before = files_under(tmp_path)
    for extra in ([], ["--overwrite"]):
        result = run_msf("recover", tmp_path, "-o", tmp_path, "--model", lsp14_model_path, *extra)
        assert result.returncode == 1 and "the output folder is this input folder" in result.stderr, result.stderr
    assert files_under(tmp_path) == before


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_loops_and_dangling_links(tmp_path, lsp14_model_path):
    """Two links to "." made the walk exponential (a hang); one gave names of 40 "self/" parts; a dangling
    link stopped the whole run before any input (the others must go on)."""
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    np.save(root / "a.npy", keyframes(41, 1))
    np.save(root / "sub" / "b.npy", keyframes(41, 2))
    for name in ("l1", "l2", "self"):
        os.symlink(".", root / name)
    os.symlink(tmp_path / "nowhere.npy", root / "dangling.npy")
    pairs = batch.expand([root], tmp_path / "out")
    assert [str(out.relative_to(tmp_path / "out")) for _, out in pairs] == ["a.npy", "dangling.npy", "sub/b.npy"]
    result = run_msf("recover", root, "-o", tmp_path / "out", "--model", lsp14_model_path)
    assert result.returncode == 1 and "2 done, 1 failed" in result.stderr, result.stderr
    assert sorted(files_under(tmp_path / "out")) == ["a.npy", "sub/b.npy"]


def test_detector_formats_through_a_batch(tmp_path):
    """COCO files and an OpenPose folder, recovered in one batch as one at a time would."""
    rng = np.random.default_rng(5)
    frames = np.arange(0, 101, 10)
    def found(fmt):
        tracks = [detectors.PersonTrack(i, frames, rng.uniform(100, 600, (len(frames), 17, 2)),
                                        rng.uniform(0.5, 1, (len(frames), 17))) for i in range(2)]
        return detectors.Detections("coco17", tracks, 101, None, fmt)
    (tmp_path / "in" / "video").mkdir(parents=True)
    detectors.write(tmp_path / "in" / "a.json", found("coco"))
    detectors.write(tmp_path / "in" / "video", found("openpose"))
    model = ["--model", "h36m17-2d", "--image-size", 640, 480]
    result = run_msf("recover", tmp_path / "in", "-o", tmp_path / "out", *model, "--jobs", 2)
    assert result.returncode == 0, result.stderr
    out = files_under(tmp_path / "out")
    assert "a.json" in out and len([n for n in out if n.startswith("video/")]) == 101
    (tmp_path / "single").mkdir()
    for name in ("a.json", "video"):
        result = run_msf("recover", tmp_path / "in" / name, "-o", tmp_path / "single" / name, *model)
        assert result.returncode == 0, result.stderr
    assert files_under(tmp_path / "single") == out


@pytest.fixture(scope="module")
def big(tmp_path_factory, lsp14_model_path, backend):
    """Inputs that take a few seconds, and the outputs of an uninterrupted run of them."""
    root = tmp_path_factory.mktemp("big")
    (root / "in").mkdir()
    n_frames = 20001 if backend == "cpp" else 2001  # NumPy is about 10x slower
    for i in range(16):
        np.save(root / "in" / f"t{i:02d}.npy", keyframes(n_frames, i))
    refiner = msf.Refiner.load(lsp14_model_path)
    args = cli.parser().parse_args(["recover", str(root / "in"), "-o", str(root / "ref"),
                                    "--model", str(lsp14_model_path)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the videos' assumed lengths, said once per file
        summary = batch.run([root / "in"], root / "ref", cli.partial(cli._recover_path, args), refiner)
    assert summary.status == 0 and summary.done == 16
    return root


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
@pytest.mark.parametrize("how, jobs", [("SIGINT", 2), ("SIGTERM", 1), ("kill a worker", 2)])
def test_interrupted_runs_leave_nothing_partial_and_resume(tmp_path, big, lsp14_model_path, how, jobs):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "msf", "recover", str(big / "in"), "-o", str(out),
               "--model", str(lsp14_model_path), "--jobs", str(jobs)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(p.is_file() for p in out.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.02)
    if how == "kill a worker":
        workers = [c for c in _children(process.pid)
                   if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()]
        os.kill(workers[0], signal.SIGKILL)
    else:
        process.send_signal(getattr(signal, how))
    stderr = process.communicate(timeout=120)[1]
    expected_status = {"SIGINT": 130, "SIGTERM": 143, "kill a worker": 1}[how]
    assert process.returncode == expected_status, stderr
    assert "stopped" in stderr and "run again to resume" in stderr and "Traceback" not in stderr
    partial = files_under(out)
    assert 0 < len(partial) < 16 and no_temporaries(out)
    reference = files_under(big / "ref")
    assert all(reference[name] == content for name, content in partial.items())  # nothing half-written
    result = run_msf("recover", big / "in", "-o", out, "--model", lsp14_model_path, "--jobs", 2)
    assert result.returncode == 0, result.stderr
    assert f"{16 - len(partial)} done, 0 failed, {len(partial)} skipped" in result.stderr
    assert files_under(out) == reference


def test_a_run_killed_outright_leaves_temporaries_the_next_run_removes(tmp_path, lsp14_model_path):
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "a.npy", keyframes(41, 1))
    stale = tmp_path / "out" / ".msf-tmp-999999-a.npy"
    stale.mkdir(parents=True)
    (stale / "a.npy").write_bytes(b"half")
    result = run_msf("recover", tmp_path / "in", "-o", tmp_path / "out", "--model", lsp14_model_path)
    assert result.returncode == 0, result.stderr
    assert sorted(files_under(tmp_path / "out")) == ["a.npy"]


def test_atomic_output_replaces_files_and_folders(tmp_path):
    target = tmp_path / "x"
    for make in (lambda p: p.write_text("file"), lambda p: (p.mkdir(), (p / "f").write_text("folder")),
                 lambda p: p.write_text("file again")):
        with msf.files.atomic_output(target) as temporary:
            assert temporary.name == "x" and temporary.parent != tmp_path
            make(temporary)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]
    assert target.read_text() == "file again"
    with pytest.raises(KeyboardInterrupt):
        with msf.files.atomic_output(tmp_path / "y") as temporary:
            temporary.write_text("partial")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_the_core_never_imports_ray():
    code = "import sys, msf, msf.cli, msf.batch; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def copy_file(refiner, source, output, progress):
    """A recover_file for msf.batch.run: copies, says it wrote `refiner` frames."""
    progress()
    output.write_bytes(source.read_bytes())
    return refiner


class Unloadable:
    """Pickles, but cannot be unpickled in a worker process (as a model that is not there)."""

    def __reduce__(self):
        return _load_unloadable, ()


def _load_unloadable():
    import multiprocessing
    if multiprocessing.parent_process() is not None:
        raise msf.WeightsError("no such model here")
    return Unloadable()


def test_library_use_and_workers_without_a_model(tmp_path, capfd):
    for i in range(5):
        (tmp_path / f"{i}.json").write_text(str(i))
    summary = batch.run([tmp_path / "*.json"], tmp_path / "out", copy_file, 7, jobs=2)
    assert (summary.done, summary.frames, summary.status) == (5, 35, 0)
    assert files_under(tmp_path / "out") == {f"{i}.json": str(i).encode() for i in range(5)}
    summary = batch.run([tmp_path / "*.json"], tmp_path / "other", copy_file, Unloadable(), jobs=2)
    assert summary.broken and (summary.status, summary.done, summary.not_done) == (1, 0, 5)
    assert files_under(tmp_path / "other") == {}
    err = capfd.readouterr().err
    assert err.count("cannot load the model in a worker process: no such model here") == 1


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_streams_the_same_frames(tmp_path, lsp14_model_path, monkeypatch):
    """On a terminal one file is streamed keyframe by keyframe for its progress bar; elsewhere (and in
    batches) recovered in one call: the same frames either way, also for an off-grid last keyframe.
    Within the model tolerance, not bitwise: in a full-suite run (CI, cpp) 21 of 5754 values differed by
    one float32 ulp (1.2e-7 relative), which this test alone does not reproduce (open: see the issue note)."""
    kf = keyframes(137, 3)
    np.savez(tmp_path / "in.npz", a=kf, a_n_frames=np.int64(137), b=keyframes(91, 4))
    argv = ["recover", str(tmp_path / "in.npz"), "--model", str(lsp14_model_path)]
    assert cli.main(argv + ["-o", str(tmp_path / "plain.npz")]) == 0
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert cli.main(argv + ["-o", str(tmp_path / "terminal.npz")]) == 0
    assert "msf recover [" in sys.stderr.getvalue()  # the bar was drawn
    with np.load(tmp_path / "plain.npz") as plain, np.load(tmp_path / "terminal.npz") as terminal:
        for name in "ab":
            assert_close(terminal[name], plain[name], atol_of_max=MODEL_ATOL_OF_MAX, what=f"sequence {name}")
