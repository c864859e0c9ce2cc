"""The `msf` command line.

    msf convert CHECKPOINT -o model.safetensors [--skeleton ...]   official checkpoint -> msf weights
    msf info FILE                                                  config, pose, parameters, FLOPs

Each subcommand is an `_add_<name>(subparsers)` function that declares its arguments and sets `run`
(args -> exit status); add one to COMMANDS to extend the tool. msf errors and OS errors end in a
one-line message on stderr and exit status 1, never a traceback.
"""
from __future__ import annotations

import argparse
import sys

from . import __version__
from .checkpoint import MAX_TOTAL_BYTES
from .convert import convert, describe
from .errors import Error
from .pose import ALIASES, GENERIC, SKELETONS, UNITS


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
            root_joints=args.root_joints, image_normalised=args.image_normalised, source=args.description)
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
    p.set_defaults(run=_run_convert)


def _run_info(args: argparse.Namespace) -> int:
    print(describe(args.file))
    return 0


def _add_info(subparsers) -> None:
    p = subparsers.add_parser(
        "info", help="describe an msf weight file (or a checkpoint): config, pose, parameters, FLOPs",
        description="Print a weight file's config, window length, pose convention, parameter count and "
                    "FLOPs per window (with the formula). A PyTorch checkpoint is described as it would "
                    "convert.")
    p.add_argument("file", help="a .safetensors weight file or a torch.save checkpoint")
    p.set_defaults(run=_run_info)


COMMANDS = (_add_convert, _add_info)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="msf", description="Fast CPU inference for MixSynthFormer pose refinement.")
    p.add_argument("--version", action="version", version=f"msf {__version__}")
    subparsers = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs `msf COMMAND ...` (argv without the program name; default sys.argv[1:]); returns the exit status."""
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (Error, OSError) as e:
        print(f"msf {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
