"""The installed wheel (docs/packaging.md), checked when CI runs the suite against it (MSF_PACKAGING_CHECK=1):
the tests import the installed msf, not the source tree's src/, and its C++ extensions need nothing but glibc
(libc, libm, libpthread, libdl, the loader) and libgcc_s: libstdc++ is linked into them."""
import os
import struct
import sys
from pathlib import Path

import pytest

import msf
from helpers import ROOT

SYSTEM_LIBRARIES = ("libc.so.", "libm.so.", "libpthread.so.", "libdl.so.", "librt.so.", "libgcc_s.so.", "ld-linux")

pytestmark = pytest.mark.skipif(os.environ.get("MSF_PACKAGING_CHECK") != "1",
                                reason="checks of an installed wheel: CI sets MSF_PACKAGING_CHECK=1 there")


def elf_needed(path: Path) -> list[str]:
    """DT_NEEDED entries of a little-endian ELF64 shared object."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, f"{path} is not a little-endian ELF64 file"
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    needed = []
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if kind != 6:  # SHT_DYNAMIC; its sh_link is the string table
            continue
        strtab = sections[link][4]
        for pos in range(offset, offset + size, entsize):
            tag, value = struct.unpack_from("<qQ", data, pos)
            if tag == 0:
                break
            if tag == 1:  # DT_NEEDED
                needed.append(data[strtab + value:data.index(b"\0", strtab + value)].decode())
    return needed


def test_msf_is_the_installed_package():
    where = Path(msf.__file__).resolve()
    print("msf imported from", where)
    assert not where.is_relative_to(ROOT), f"msf imported from the source tree ({where}), not the installed wheel"
    assert where.is_relative_to(Path(sys.prefix).resolve()), f"msf ({where}) is not installed in {sys.prefix}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="manylinux wheels: Linux only")
@pytest.mark.parametrize("name", ["msf._core", "msf._kernels"])
def test_extension_needs_only_glibc_and_libgcc(name):
    module = pytest.importorskip(name, reason=f"{name} (C++ extension) is not built")
    needed = elf_needed(Path(module.__file__))
    print(Path(module.__file__).name, "needs", needed)
    other = [lib for lib in needed if not lib.startswith(SYSTEM_LIBRARIES)]
    assert not other, f"{name} needs {other}: the C++ runtime should be linked in (MSF_STATIC_CXX_RUNTIME)"
