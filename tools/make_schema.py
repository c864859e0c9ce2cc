"""Writes cpp/src/schema.inc, the C++ loader's copy of the state-dict schema, from msf.schema (its one source).

    python tools/make_schema.py            # rewrite the file
    python tools/make_schema.py --check    # exit 1 if it is not what this script writes (tests/test_schema.py)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from msf import schema  # noqa: E402
from msf.config import Config  # noqa: E402

OUT = REPO / "cpp" / "src" / "schema.inc"


def cpp_id(name: str) -> str:
    """The enumerator of a tensor: its name with the synthesiser prefixes shortened, '.' -> '_'."""
    for long, short in (("synth_att.synth_token.", "token_"), ("synth_att.synth_channel.", "channel_"),
                        ("synth_att.", "")):
        name = name.replace(long, short)
    return name.replace(".", "_")


def row(spec: schema.TensorSpec) -> str:
    rows, cols = (spec.shape + ("None",))[:2]
    less, than = spec.needed_if or ("None", "None")
    layout = "Transposed" if spec.transposed else "AsIs"
    return f'    X({cpp_id(spec.name)}, "{spec.name}", {rows}, {cols}, {layout}, {less}, {than})'


def table(macro: str, specs: tuple[schema.TensorSpec, ...]) -> list[str]:
    return [f"#define {macro}(X) \\", *(row(s) + " \\" for s in specs[:-1]), row(specs[-1]), ""]


def render() -> str:
    dims = [f"    X({symbol}) /* {meaning} */ \\" for symbol, meaning in schema.DIMENSIONS.items()]
    dims[-1] = dims[-1][:-2]
    fields = " ".join(f"X({f})" for f in Config.__dataclass_fields__)
    lines = [
        "// The state-dict schema (docs/model.md §1). GENERATED from src/msf/schema.py by tools/make_schema.py:",
        "// do not edit; change the Python table and rerun the script (tests/test_schema.py checks it is current).",
        "//",
        "// X(id, name, rows, cols, layout, less, than): a tensor of shape (rows, cols) in dimension symbols",
        "// (cols None: 1-D); layout Transposed: an (out, in) nn.Linear weight stored as (in, out); read by the",
        "// forward only where less < than (None, None: always), else accepted with its shape and dropped.",
        "// Per-block names follow \"encoder.layers.{i}.\". A config size is read off the first 2-D, always-read",
        "// tensor naming it (global table, then block 0); X(symbol, base, factor) of DERIVED: symbol = factor * base.",
        "#pragma once",
        "",
        "#define MSF_SCHEMA_DIMENSIONS(X) \\", *dims, "",
        "#define MSF_SCHEMA_DERIVED(X) " + " ".join(f"X({s}, {b}, {k})" for s, (b, k) in schema.DERIVED.items()),
        "",
        *table("MSF_SCHEMA_GLOBAL_TENSORS", schema.GLOBAL),
        *table("MSF_SCHEMA_BLOCK_TENSORS", schema.BLOCK),
        f"#define MSF_SCHEMA_CONFIG_FIELDS(X) {fields}",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the file is current")
    args = parser.parse_args()
    text = render()
    if args.check:
        if OUT.read_text() != text:
            print(f"{OUT.relative_to(REPO)} is stale: run python tools/make_schema.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
