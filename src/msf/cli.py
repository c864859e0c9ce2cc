"""The `msf` command line.

    msf convert CHECKPOINT -o model.safetensors [--skeleton ...]   official checkpoint -> msf weights
    msf info FILE                                                  config, pose, parameters, FLOPs
    msf recover INPUT -o OUTPUT --model NAME|FILE [--image-size W H]   keyframes -> every frame
    msf recover predictions.json -o out.json --model coco17-2d --image-size W H   detector file -> every frame
    msf recover IN... -o OUTDIR --model NAME|FILE [--jobs N] [--overwrite]   files, folders, globs -> OUTDIR
    msf plot INPUT -o out.png --model NAME|FILE                    skeletons and trajectories, as a PNG

Each subcommand is an `_add_<name>(subparsers)` function that declares its arguments and sets `run`
(args -> exit status); add one to COMMANDS to extend the tool. msf errors and OS errors end in a
one-line message on stderr and exit status 1, never a traceback; warnings are one line each,
`msf: warning: ...`. Messages name the command line's flags (--image-size W H), not Python arguments.
"""
from __future__ import annotations

import argparse
import glob
import sys
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np

from . import __version__, batch, detectors, people
from .checkpoint import MAX_TOTAL_BYTES
from .convert import convert
from .errors import Error, InputError
from .files import FORMATS, read_keyframes, write_frames
from .info import describe
from .inputs import FLOAT32_MAX, MIN_SCORE, check_min_score
from .keyframes import keyframe_count, keyframe_indices, last_off_grid
from .pose import ALIASES, GENERIC, SKELETONS, UNITS
from .refiner import MODELS_DIR, Refiner, models


def _root_joints(text: str) -> list[int | str]:
    """'none' -> [] (not root-relative); '2,3' -> [2, 3]; joint names are resolved by msf.pose."""
    if text.strip().lower() == "none":
        return []
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"{text!r}: expected joint indices or names separated by commas, "
                                         f"or 'none'")
    return [int(item) if item.lstrip("-").isdigit() else item for item in items]


def _run_convert(args: argparse.Namespace) -> int:
    convert(args.checkpoint, args.output, skeleton=args.skeleton, dims=args.dims, units=args.units,
            root_joints=args.root_joints, image_normalised=args.image_normalised, source=args.description,
            resaved_from=args.resaved_from)
    print(f"wrote {args.output}")
    print(describe(args.output))
    return 0


def _add_convert(subparsers) -> None:
    p = subparsers.add_parser(
        "convert", help="convert an official PyTorch checkpoint to an msf weight file (no PyTorch needed)",
        description="Convert a torch.save checkpoint of the official MixSynthFormer (a trainer checkpoint "
                    ".pth.tar/.pth/.pt with 'state_dict', or a bare state dict; `module.` prefixes and "
                    "optimizer state are fine) to an msf .safetensors file. The file is read without PyTorch "
                    f"and nothing in it is executed: zip members must be stored uncompressed and total at "
                    f"most {MAX_TOTAL_BYTES >> 30} GiB. The model's config comes from the tensor shapes; the "
                    "pose convention defaults to the official one for P = 51 (h36m17, 3D mm, root-relative at "
                    "the pelvis), 30 (jhmdb15, 2D divided by the image size), 42 (lsp14, 3D mm, root-relative "
                    "at the mid-hip) and 144 (smpl24-6d, 6D rotations); other P need --skeleton.")
    p.add_argument("checkpoint", help="the torch.save file")
    p.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    pose = p.add_argument_group("pose convention (defaults: the official one for P)")
    pose.add_argument("--skeleton", choices=[*SKELETONS, *ALIASES, GENERIC],
                      help=f"joint names and tree; {GENERIC!r} names joints joint_0.. and needs --dims")
    pose.add_argument("--dims", type=int, choices=sorted(UNITS), help="values per joint (6: 6D rotations)")
    pose.add_argument("--units", choices=sorted({u for us in UNITS.values() for u in us}),
                      help="units of the pose values")
    pose.add_argument("--root-joints", type=_root_joints, metavar="J[,J...]|none",
                      help="joints (indices or names) whose mean is the root of root-relative poses, "
                           "or 'none' for absolute poses")
    pose.add_argument("--image-normalised", action=argparse.BooleanOptionalAction, default=None,
                      help="2D poses are divided by the image (width, height)")
    p.add_argument("--description", help="free text kept in the file's provenance metadata")
    # tools/convert_weights.py converts a re-saved copy of a legacy checkpoint: errors and provenance name this
    p.add_argument("--resaved-from", help=argparse.SUPPRESS)
    p.set_defaults(run=_run_convert)


def _run_info(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.exists() and args.file in models():  # shipped names, as --model takes them
        path = MODELS_DIR / f"{args.file}.safetensors"
    print(describe(path))
    return 0


def _add_info(subparsers) -> None:
    p = subparsers.add_parser(
        "info", help="describe an msf weight file (or a checkpoint): config, pose, parameters, FLOPs",
        description="Print a weight file's config, window length, pose convention, parameter count and "
                    "FLOPs per window (with the formula). A PyTorch checkpoint is described as it would "
                    "convert.")
    p.add_argument("file", help="a .safetensors weight file, a torch.save checkpoint or a shipped model's name")
    p.set_defaults(run=_run_info)


class _Progress:
    """tqdm when installed, else a one-line bar; silent when stderr is not a terminal."""

    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.done, self.shown = total, desc, 0, 0.0
        self.bar = None
        self.visible = sys.stderr.isatty()
        if not self.visible:
            self.update = lambda n: None
            return
        try:
            from tqdm import tqdm
            self.bar = tqdm(total=total, desc=desc, unit="keyframe")
        except ImportError:
            pass

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)
            return
        self.done += n
        if time.monotonic() - self.shown > 0.2 or self.done >= self.total:
            self.shown = time.monotonic()
            filled = int(30 * self.done / max(1, self.total))
            print(f"\r{self.desc} [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}",
                  end="\n" if self.done >= self.total else "", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _load_refiner(args: argparse.Namespace) -> Refiner:
    """The model, with --n-frames, --stride, --image-size and --threads checked against it here so that
    errors name the flags."""
    if args.threads < 0:
        raise InputError(f"--threads must be >= 0 (0: one per core), got {args.threads}")
    if args.n_frames is not None and args.n_frames < 1:
        raise InputError(f"--n-frames must be >= 1 (the video's length in frames), got {args.n_frames}")
    if args.image_size is not None and not all(0 < v <= FLOAT32_MAX for v in args.image_size):
        raise InputError(f"--image-size W H must be the image's width and height in pixels, two positive numbers; "
                         f"got {' '.join(f'{v:g}' for v in args.image_size)}")
    refiner = Refiner.load(args.model, backend=args.backend, threads=args.threads)
    Q = refiner.config.Q
    if args.stride is not None and not 1 <= args.stride <= Q:
        raise InputError(f"--stride must be from 1 to Q = {Q} for this model (windows start every STRIDE*K "
                         f"frames and must overlap or touch), got {args.stride}")
    normalised = refiner.convention.image_normalised
    if normalised and args.image_size is None:
        raise InputError("this model takes 2D keypoints normalised by the image size: pass --image-size W H "
                         "(the image's width and height in pixels)")
    if not normalised and args.image_size is not None:
        raise InputError("--image-size was given, but this model's pose convention has no image normalisation "
                         "(its keyframes are used as they are): drop --image-size")
    return refiner


def _fits(keyframes: np.ndarray, refiner: Refiner) -> bool:
    """Whether a sequence's pose layout is the model's: (M, J, D) or (M, P)."""
    P, shape = refiner.config.P, refiner.convention.shape
    if keyframes.ndim == 2:
        return keyframes.shape[1] == P
    return keyframes.shape[1:] == shape if shape else keyframes.shape[1] * keyframes.shape[2] == P


def _select(sequences: dict, refiner: Refiner, path: str) -> dict:
    """Of a file's several sequences, those in the model's pose layout; a warning names the others."""
    if len(sequences) < 2:
        return sequences
    kept = {name: entry for name, entry in sequences.items() if _fits(entry[0], refiner)}
    others = [f"{name} {entry[0].shape}" for name, entry in sequences.items() if name not in kept]
    layout = refiner.convention.shape or ("J", "D")
    if not kept:
        raise InputError(f"{path}: no sequence has this model's pose layout (M, {layout[0]}, {layout[1]}) or "
                         f"(M, {refiner.config.P}): {', '.join(others[:5])}{', ...' if len(others) > 5 else ''}")
    if others:
        warnings.warn(f"{path}: skipped {len(others)} sequences not in this model's pose layout (M, {layout[0]}, "
                      f"{layout[1]}): {', '.join(others[:5])}{', ...' if len(others) > 5 else ''}", RuntimeWarning)
    return kept


def _sequence_length(name: str, keyframes: np.ndarray, n_frames: int | None, args, K: int) -> int:
    where = f"{args.input}: {name}" if name else args.input
    if n_frames is None:
        n_frames = args.n_frames if args.n_frames is not None else (len(keyframes) - 1) * K + 1
    expected = keyframe_count(n_frames, K)  # arithmetic: a huge n_frames allocates nothing
    if len(keyframes) != expected:
        flag = "--n-frames" if args.n_frames is not None else "its n_frames"
        raise InputError(f"{where}: {len(keyframes)} keyframes for {n_frames} frames ({flag}); the model "
                         f"(K = {K}) needs {expected}, the detections on frames 0, {K}, ... and {n_frames - 1}")
    return n_frames


def _warn_assumed_lengths(path: str, sequences: dict, args, K: int) -> None:
    """Without a length the video ends on its last keyframe, which stretches a video whose last frame is
    off the K-frame grid (278 frames, keyframes 0, 10, ..., 270, 277 -> read as 281 frames): say so."""
    if args.n_frames is not None:
        return
    assumed = [f"{name + ': ' if name else ''}{len(kf)} keyframes -> {(len(kf) - 1) * K + 1} frames"
               for name, (kf, n) in sequences.items() if n is None]
    if assumed:
        warnings.warn(f"{path}: no video length given, so a video of M keyframes is taken to end on its last "
                      f"keyframe at frame (M - 1) * {K} ({'; '.join(assumed[:3])}{'; ...' if len(assumed) > 3 else ''}"
                      f"); if the last keyframe is on the video's last frame, off that grid, pass --n-frames N (or "
                      f"n_frames in the file), or the end is stretched", RuntimeWarning)


def _recover_one(refiner: Refiner, keyframes: np.ndarray, n_frames: int, args, progress: _Progress) -> np.ndarray:
    """Streams the keyframes through the model so that long videos show progress; without a bar to move,
    one recover() call (windows batched: faster, and the same frames bit for bit)."""
    if not progress.visible:
        progress.update(len(keyframes))
        return refiner.recover(keyframes, n_frames, image_size=args.image_size, stride=args.stride)
    K = refiner.config.K
    stream = refiner.stream(image_size=args.image_size, stride=args.stride)
    off_grid = last_off_grid(n_frames, K)
    parts = []
    for keyframe in keyframes[:-1] if off_grid else keyframes:
        parts.append(stream.push(keyframe))
        progress.update(1)
    parts.append(stream.finish(n_frames, keyframes[-1] if off_grid else None))
    progress.update(int(off_grid))
    return np.concatenate(parts)


def _is_detector_file(args: argparse.Namespace) -> bool:
    """--format given, an OpenPose folder, or a .json in a detector's format (msf's own JSON is not)."""
    path = Path(args.input)
    return (args.format is not None or path.is_dir()
            or (path.suffix.lower() == ".json" and detectors.sniff(path) is not None))


def _recover_detections(args: argparse.Namespace, refiner: Refiner, new_progress) -> tuple[int, str]:
    """A detector's keypoint file -> every frame of every person, written back in the same format."""
    suffix = Path(args.output).suffix.lower()
    if suffix in (".npy", ".npz"):
        raise InputError(f"{args.output}: detections are written back as a detector's JSON (the input's format, or "
                         f"--output-format's), not {suffix}: name the output .json (or a folder for openpose)")
    if args.n_frames is not None:
        detectors.check_n_frames(args.n_frames, "--n-frames")
    people.model_layout(refiner)  # before reading: a 3D model fails fast
    found = detectors.read(args.input, args.format)
    progress = new_progress(len(found.tracks), "msf recover")
    try:
        result = people.recover(refiner, found, image_size=args.image_size, n_frames=args.n_frames,
                                stride=args.stride, min_score=args.min_score, format=args.output_format,
                                name=args.input, progress=progress.update)
    finally:
        progress.close()
    detectors.write(args.output, result)
    return (sum(len(t.frames) for t in result.tracks),
            f"wrote {args.output}: {len(result.tracks)} person track(s), {result.n_frames} frames ({result.format}, "
            f"{result.layout})")


def _recover_file(args: argparse.Namespace, refiner: Refiner, new_progress=_Progress) -> tuple[int, str]:
    """args.input -> args.output: (frames written, the line that says so). new_progress(total, desc)."""
    if _is_detector_file(args):
        return _recover_detections(args, refiner, new_progress)
    sequences = _select(read_keyframes(args.input), refiner, args.input)
    if args.n_frames is not None and len(sequences) != 1:
        raise InputError("--n-frames applies to a single sequence; give <name>_n_frames per sequence instead")
    _warn_assumed_lengths(args.input, sequences, args, refiner.config.K)
    lengths = {name: _sequence_length(name, kf, n, args, refiner.config.K) for name, (kf, n) in sequences.items()}
    progress = new_progress(sum(len(kf) for kf, _ in sequences.values()), "msf recover")
    try:
        frames = {name: _recover_one(refiner, kf, lengths[name], args, progress)
                  for name, (kf, _) in sequences.items()}
    finally:
        progress.close()
    write_frames(args.output, frames)
    return sum(lengths.values()), f"wrote {args.output}: {len(frames)} sequence(s), {sum(lengths.values())} frames"


class _Checks:
    """The progress of one input in a batch: no bar of its own (msf.batch draws one for all), only its
    checks for a stop at each update."""

    visible = False

    def __init__(self, check):
        self.check = check

    def update(self, n: int) -> None:
        self.check()

    def close(self) -> None:
        pass


def _recover_path(args: argparse.Namespace, refiner: Refiner, source, output, check) -> int:
    """msf.batch's recover_file: one input of several, with the command's options; the frames written."""
    one = argparse.Namespace(**{**vars(args), "input": str(source), "output": str(output)})
    return _recover_file(one, refiner, lambda total, desc: _Checks(check))[0]


def _many(args: argparse.Namespace) -> bool:
    """Several inputs, a glob, a folder (other than one OpenPose video) or an existing folder as -o: the
    batch way (msf.batch); otherwise one input to one output, as `msf recover IN -o OUT` always was."""
    if len(args.input) > 1:
        return True
    path = Path(args.input[0])
    if not path.exists():
        return glob.has_magic(args.input[0])
    if path.is_dir() and detectors.sniff(path) == "openpose":
        return False
    return path.is_dir() or Path(args.output).is_dir()


def _run_recover(args: argparse.Namespace) -> int:
    if args.jobs < 0:
        raise InputError(f"--jobs must be >= 0 (0: one per core), got {args.jobs}")
    check_min_score(args.min_score, "--min-score")
    refiner = _load_refiner(args)
    if _many(args):
        return batch.run(args.input, args.output, partial(_recover_path, args), refiner, jobs=args.jobs,
                         overwrite=args.overwrite, desc="msf recover").status
    args.input = args.input[0]
    print(_recover_file(args, refiner)[1], file=sys.stderr)
    return 0


def _model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a shipped model's name (msf.models()) or a .safetensors file")
    p.add_argument("--image-size", type=float, nargs=2, metavar=("W", "H"),
                   help="image width and height in pixels (2D models)")
    p.add_argument("--n-frames", type=int, help="video length (default: it ends on the last keyframe)")
    p.add_argument("--stride", type=int, help="windows start every STRIDE*K frames (default 1)")
    p.add_argument("--backend", default="auto", choices=["auto", "cpp", "numpy"])
    p.add_argument("--threads", type=int, default=1, help="C++ threads (0: one per core)")


_LENGTH_HELP = ("Video length: without --n-frames (or n_frames in the file) a video of M keyframes ends on its "
                "last keyframe, (M - 1) * K + 1 frames. When the last detection is on the video's last frame "
                "off the K-frame grid (278 frames with K = 10: keyframes 0, 10, ..., 270, 277), pass --n-frames, "
                "or the end is stretched (there, to 281 frames); a warning says when the length was assumed.")


def _add_recover(subparsers) -> None:
    p = subparsers.add_parser(
        "recover", help="every frame of a video from keyframe detections",
        description=_LENGTH_HELP + " Read keyframes detected on frames 0, K, 2K, ... and the last frame (see "
                    "msf.files for the .npy / .npz / .json layouts; NaN or null marks a missing joint), refine "
                    "every frame with the model, and write them in the format OUTPUT's extension names. Entries "
                    "of an .npz that are not keyframe sequences, and sequences not in the model's pose layout, "
                    "are skipped with a warning.")
    p.add_argument("input", nargs="+",
                   help=f"keyframes ({', '.join(FORMATS)}), or a detector's keypoint file or OpenPose folder; "
                        f"several, folders (searched recursively) or globs for a batch")
    p.add_argument("-o", "--output", required=True,
                   help=f"frames ({', '.join(FORMATS)}), or for a detector's file, a file in its format; for a "
                        f"batch, the folder that gets each input's output under its relative name and format")
    _model_arguments(p)
    many = p.add_argument_group(
        "batches", "Several inputs, a folder or a glob (or an existing folder as -o) make a batch: one progress "
        "line, a bad input reported on one line while the others go on, a summary, exit status 1 if any "
        "failed. Outputs appear atomically; one that exists is complete and skipped, so an interrupted run "
        "resumes when started again; Ctrl-C or SIGTERM stops cleanly (exit status 130 or 143).")
    many.add_argument("--jobs", type=int, default=1, help="worker processes (0: one per core; default 1)")
    many.add_argument("--overwrite", action="store_true", help="recover inputs whose output exists too")
    detector = p.add_argument_group(
        "detector files", "COCO/AlphaPose results, OpenPose JSON folders, MMPose predictions, ultralytics JSON "
        "(msf.detectors): each person is recovered from its first to its last detection on the keyframe grid "
        "(frames 0, K, 2K, ... and the last); detections between keyframes are not used (a warning counts them); "
        "keypoints are converted to the model's layout (e.g. halpe26 -> coco17)")
    detector.add_argument("--format", choices=detectors.FORMATS, help="the input's format (default: sniffed)")
    detector.add_argument("--output-format", choices=detectors.FORMATS, help="default: the input's format")
    detector.add_argument("--min-score", type=float, default=MIN_SCORE,
                          help=f"joints scored below this are missing (default {MIN_SCORE})")
    p.set_defaults(run=_run_recover)


def _run_plot(args: argparse.Namespace) -> int:
    from .plot import plot_sequence

    refiner = _load_refiner(args)
    sequences = read_keyframes(args.input)
    name = args.sequence if args.sequence is not None else next(iter(_select(sequences, refiner, args.input)))
    if name not in sequences:
        raise InputError(f"no sequence {name!r} in {args.input}; it has {sorted(sequences)}")
    keyframes, n_frames = sequences[name]
    _warn_assumed_lengths(args.input, {name: sequences[name]}, args, refiner.config.K)
    n_frames = _sequence_length(name, keyframes, n_frames, args, refiner.config.K)
    J = keyframes.shape[1]  # (M, J, D), or (M, P) plotted as P joints of one value
    if any(not 0 <= j < J for j in args.joints or ()):
        raise InputError(f"--joints must be joint indices from 0 to {J - 1} (the keyframes have {J} joints), got "
                         f"{','.join(map(str, args.joints))}")
    refined = refiner.recover(keyframes, n_frames, image_size=args.image_size, stride=args.stride)
    shape = refined.shape[1:] if refined.ndim == 3 else (refined.shape[1], 1)
    plot_sequence(args.output, keyframes.reshape((len(keyframes),) + shape),
                  keyframe_indices(n_frames, refiner.config.K), refined.reshape((n_frames,) + shape),
                  refiner.convention.parents, args.joints or (), title=f"{args.model}: {name or args.input}")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _add_plot(subparsers) -> None:
    p = subparsers.add_parser(
        "plot", help="PNG of skeleton frames and joint trajectories: keyframes, linear interpolation, msf",
        description="Plot one sequence of a keyframe file (as for `msf recover`): four skeleton frames and "
                    "the trajectories of a few joints. Needs matplotlib (pip install \"msf[plot]\"). "
                    + _LENGTH_HELP)
    p.add_argument("input", help=f"keyframes ({', '.join(FORMATS)})")
    p.add_argument("-o", "--output", required=True, help="the PNG to write")
    p.add_argument("--sequence", help="which sequence of an .npz/.json file (default: the first)")
    p.add_argument("--joints", type=lambda t: [int(j) for j in t.split(",")], help="joint indices to plot, e.g. 3,13")
    _model_arguments(p)
    p.set_defaults(run=_run_plot)


COMMANDS = (_add_convert, _add_info, _add_recover, _add_plot)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="msf", description="Fast CPU inference for MixSynthFormer pose refinement. "
                                "`msf recover --help` says how a video's length is found.")
    p.add_argument("--version", action="version", version=f"msf {__version__}")
    subparsers = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs `msf COMMAND ...` (argv without the program name; default sys.argv[1:]); returns the exit status."""
    args = parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return args.run(args)
        except (Error, OSError) as e:
            print(f"msf {args.command}: error: {e}", file=sys.stderr)
            return 1


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line, without the source line Python's default shows."""
    print(f"msf: warning: {' '.join(str(message).split())}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
