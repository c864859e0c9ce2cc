"""msf.ray on a real local Ray cluster (2 CPUs): the same frames as the single-process path, bit for bit."""
import subprocess
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

import msf  # noqa: E402
import msf.ray  # noqa: E402
from helpers import lsp14_keyframes as keyframes  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    yield
    ray.shutdown()


def test_files_give_the_frames_of_msf_recover(tmp_path, cluster, lsp14_model_path, backend):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for i in range(6):
        np.save(tmp_path / "in" / ("sub" if i % 2 else "") / f"t{i}.npy", keyframes(40 + 13 * i, i))
    np.savez(tmp_path / "in" / "two.npz", a=keyframes(55, 10), b=keyframes(91, 11).reshape(-1, 42),
             b_n_frames=np.int64(91))
    (tmp_path / "in" / "bad.npy").write_bytes(b"not an npy file")
    refiner = msf.Refiner.load(lsp14_model_path, backend=backend)
    rows = msf.ray.recover(msf.ray.from_files([tmp_path / "in"]), refiner, actors=2, batch_size=3).take_all()
    by_id = {(r["source"], r["sequence"]): r for r in rows}
    assert len(rows) == 9 and by_id[("bad.npy", "")]["error"].startswith(str(tmp_path / "in" / "bad.npy"))
    # the single-process path: msf recover over the same folder
    result = subprocess.run([sys.executable, "-m", "msf", "recover", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                             "--model", str(lsp14_model_path), "--backend", backend], capture_output=True, text=True)
    assert result.returncode == 1 and "7 done, 1 failed" in result.stderr, result.stderr
    for name in [f"t{i}.npy" if i % 2 == 0 else f"sub/t{i}.npy" for i in range(6)]:
        row = by_id[(name, "")]
        assert row["error"] == ""
        np.testing.assert_array_equal(row["frames"], np.load(tmp_path / "out" / name).reshape(-1, 42))
    with np.load(tmp_path / "out" / "two.npz") as two:
        for seq in "ab":
            np.testing.assert_array_equal(by_id[("two.npz", seq)]["frames"], two[seq].reshape(-1, 42))


def test_arrays_of_tracks(cluster, lsp14_model_path, backend):
    refiner = msf.Refiner.load(lsp14_model_path, backend=backend)
    tracks = [keyframes(n, seed) for seed, n in enumerate((31, 101, 77, 200))]
    tracks.append(np.full((3, 14, 3), np.inf))  # refused by recover: this row's error, not the data set's
    lengths = [31, 101, 77, 200, 21]
    rows = msf.ray.recover(msf.ray.from_tracks(tracks, lengths), refiner, actors=2, batch_size=2).take_all()
    by_id = {int(r["source"]): r for r in rows}
    for i, (kf, n) in enumerate(zip(tracks[:4], lengths)):
        assert by_id[i]["error"] == ""
        np.testing.assert_array_equal(by_id[i]["frames"], refiner.recover(kf, n).reshape(n, 42))
    assert "infinite values" in by_id[4]["error"] and by_id[4]["frames"].shape == (0, 42)
