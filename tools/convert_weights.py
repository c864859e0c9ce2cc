#!/usr/bin/env python3
"""Convert an official MixSynthFormer checkpoint to an msf weight file; PyTorch is not needed.

    python tools/convert_weights.py checkpoint.pth.tar -o model.safetensors [--skeleton ...]

The same as `msf convert` (see `msf convert --help`): the checkpoint is read by msf's restricted
reader, which executes nothing from the file.
"""
import sys
from pathlib import Path

try:
    from msf.cli import main
except ImportError:  # run from a source checkout where msf is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from msf.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))
