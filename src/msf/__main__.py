"""`python -m msf ...` is the `msf` command line."""
import sys

from .cli import main

sys.exit(main())
