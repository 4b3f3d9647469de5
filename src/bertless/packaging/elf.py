"""The newest glibc a compiled library needs, read from the ELF file itself.

A wheel's manylinux tag is a claim about the glibc it needs; the symbol versions its shared
libraries ask for are the fact, and a library that asks for a newer glibc than the runtime has
fails at import ("GLIBC_2.27 not found", qdrant/fastembed#314).
"""

from __future__ import annotations

import mmap
import re
import struct
from pathlib import Path


def glibc_needed(path: Path) -> tuple[int, ...] | None:
    """The newest GLIBC_x.y symbol version an ELF file needs, from its .gnu.version_r section.

    None when the file is no ELF file or needs no versioned glibc symbol. Read here with `struct`
    rather than `readelf`, which a build machine may lack and whose output is for people.
    """
    with path.open("rb") as handle:
        if handle.read(4) != b"\x7fELF":
            return None
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _newest_glibc(data)


def _newest_glibc(data: mmap.mmap) -> tuple[int, ...] | None:
    order = "<" if data[5] == 1 else ">"
    if data[4] == 2:  # ELFCLASS64
        (shoff,) = struct.unpack_from(order + "Q", data, 0x28)
        shentsize, shnum = struct.unpack_from(order + "HH", data, 0x3A)
        section = order + "IIQQQQIIQQ"
    else:
        (shoff,) = struct.unpack_from(order + "I", data, 0x20)
        shentsize, shnum = struct.unpack_from(order + "HH", data, 0x2E)
        section = order + "IIIIIIIIII"
    headers = [struct.unpack_from(section, data, shoff + i * shentsize) for i in range(shnum)]
    newest: tuple[int, ...] | None = None
    for header in headers:
        if header[1] != 0x6FFFFFFE:  # SHT_GNU_verneed
            continue
        offset, link, count = header[4], header[6], header[7]
        strings = headers[link][4]
        for _ in range(count):
            _, aux_count, _, aux, following = struct.unpack_from(order + "HHIII", data, offset)
            at = offset + aux
            for _ in range(aux_count):
                _, _, _, name_at, next_aux = struct.unpack_from(order + "IHHII", data, at)
                name = data[strings + name_at : data.find(b"\0", strings + name_at)].decode()
                match = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)+)", name)
                if match:
                    version = tuple(int(p) for p in match.group(1).split("."))
                    newest = max(newest or version, version)
                at += next_aux
            offset += following
    return newest
