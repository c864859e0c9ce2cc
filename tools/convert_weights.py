#!/usr/bin/env python3
"""Convert an official MixSynthFormer checkpoint to an msf weight file; PyTorch is not needed.

    python tools/convert_weights.py checkpoint.pth.tar -o model.safetensors [--skeleton ...]

The same as `msf convert` (see `msf convert --help`): the checkpoint is read by msf's restricted
reader, which executes nothing from the file. One addition: a legacy (pre-1.6, not zip) checkpoint,
which that reader refuses, is re-saved in the zip format by torch.load(weights_only=True) when PyTorch
is installed here (torch's own allowlisting unpickler, which executes nothing either), then converted; the
provenance metadata then names and fingerprints the legacy file, not the copy.
"""
import os
import sys
import tempfile
from pathlib import Path

try:
    from msf.cli import main
except ImportError:  # run from a source checkout where msf is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from msf.cli import main
from msf.checkpoint import CheckpointError, LegacyFormatError, load_checkpoint
from msf.errors import Error


def resave_legacy(path: Path, directory: str) -> Path | None:
    """A zip-format copy (same file name, in `directory`) of a legacy checkpoint, or None if it is not one
    or torch is missing (then msf convert reports the legacy format itself). Raises CheckpointError naming
    the file when torch cannot read it (truncated, corrupted, or refused by weights_only)."""
    try:
        load_checkpoint(path)
        return None
    except LegacyFormatError:
        pass
    except Exception:  # any other problem is msf convert's to report
        return None
    try:
        import torch
    except ImportError:
        return None
    copy = Path(directory) / path.name
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # EOFError, RuntimeError, pickle.UnpicklingError, ...: torch's, not ours to show raw
        detail = " ".join(str(e).split())[:300]
        raise CheckpointError(f"{path}: legacy (pre-1.6) torch.save format, and torch.load cannot read it "
                              f"(truncated or corrupted?): {type(e).__name__}{': ' + detail if detail else ''}"
                              ) from None
    torch.save(state, copy)
    return copy


if __name__ == "__main__":
    argv = sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        if argv and not argv[0].startswith("-") and os.path.isfile(argv[0]):  # False, not OSError, for any path
            try:
                copy = resave_legacy(Path(argv[0]), tmp)
            except Error as e:
                print(f"msf convert: error: {e}", file=sys.stderr)
                sys.exit(1)
            if copy is not None:
                print(f"{argv[0]}: legacy torch.save format, re-saved by torch for conversion", file=sys.stderr)
                # msf convert of the copy, whose errors and provenance (name, size, sha256) are the user's file's
                argv = [str(copy), *argv[1:], "--resaved-from", argv[0]]
        sys.exit(main(["convert", *argv]))
