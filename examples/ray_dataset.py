"""A data set on a Ray cluster: every track of a folder of keyframe files, one Refiner per actor.

    pip install "msf[ray]"
    python examples/ray_dataset.py FOLDER [--model h36m17-3d] [--actors 2] [--address auto] [-o OUT]

Without FOLDER a small synthetic data set is written to a temporary folder first. --address auto joins a
running cluster (`ray start --head` on one machine, `ray start --address HEAD:6379` on the others);
without it a local cluster is started on this machine. The files must be readable on every machine at
the same path (a shared file system). msf.ray.from_files lists the files on this machine (the driver);
msf.ray.recover reads and recovers them in the actors: each unpickles the Refiner once (the weight file's
bytes, or a shipped model's name checked by digest) and recovers batches of files. With -o, the frames
are written to OUT as one .npz per input file (relative names kept), on this machine.
"""
import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import ray

import msf
import msf.ray


def synthetic(folder: Path, tracks: int = 20, n_frames: int = 3000) -> None:
    """Random-walk 3D poses in mm (H36M-17), detections on frames 0, 10, 20, ... as the model needs."""
    rng = np.random.default_rng(0)
    for i in range(tracks):
        walk = np.cumsum(rng.normal(0, 5, (len(msf.keyframe_indices(n_frames, 10)), 17, 3)), axis=0)
        np.save(folder / f"track{i:03d}.npy", walk + rng.normal(0, 200, (1, 17, 3)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", help="keyframe files (.npy, .npz, .json), searched recursively")
    parser.add_argument("--model", default="h36m17-3d", help="a shipped model's name or a .safetensors file")
    parser.add_argument("--actors", type=int, default=2, help="Ray actors, one CPU and one Refiner each")
    parser.add_argument("--address", help="a running cluster ('auto' or HOST:PORT); default: start one here")
    parser.add_argument("-o", "--output", help="write each file's frames to OUTPUT/<relative name>.npz")
    args = parser.parse_args()

    ray.init(address=args.address)
    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="msf-ray-"))
    if not args.folder:
        synthetic(folder)
    refiner = msf.Refiner.load(args.model)
    started = time.perf_counter()
    rows = msf.ray.recover(msf.ray.from_files([folder]), refiner, actors=args.actors)
    by_file, frames, failed = defaultdict(dict), 0, 0
    for row in rows.iter_rows():  # streams: results arrive while the actors work on the rest
        if row["error"]:
            failed += 1
            print(f"failed: {row['source']}: {row['error']}")
            continue
        frames += len(row["frames"])
        by_file[row["source"]][row["sequence"] or "frames"] = row["frames"]
    seconds = time.perf_counter() - started
    print(f"{len(by_file)} files, {frames:,} frames in {seconds:.1f} s ({frames / seconds:,.0f} frames/s) "
          f"with {args.actors} actors; {failed} failed")
    if args.output:
        for source, sequences in by_file.items():
            path = Path(args.output) / f"{source}.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, **sequences)  # (n_frames, P) each: reshape to (n_frames, J, D) as the model's pose says
        print(f"wrote {len(by_file)} files to {args.output}")


if __name__ == "__main__":
    main()
