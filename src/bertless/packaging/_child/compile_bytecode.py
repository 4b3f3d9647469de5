"""Compile sources into unchecked-hash `.pyc` with the interpreter that runs this script.

Run by `bertless.packaging.proof.precompile` as `python -I -S compile_bytecode.py SPEC` with the
target platform's CPython, since a `.pyc`'s magic number belongs to one Python version; standard
library only, so any CPython runs it. SPEC is a JSON list of [zip name, source file, .pyc file].
The zip name becomes the file name the code carries (`dfile`), so the same sources always give the
same bytes. The last line printed is {"cache_tag", "failed": [zip names it could not compile]}.
"""

from __future__ import annotations

import json
import py_compile
import sys
from pathlib import Path
from typing import Any


def compile_all(files: list[list[str]]) -> dict[str, Any]:
    """Compile each file; one that does not compile is named, and left to fail at import."""
    failed = []
    for name, source, pyc in files:
        try:
            py_compile.compile(
                source,
                cfile=pyc,
                dfile=name,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
        except py_compile.PyCompileError:
            failed.append(name)
    return {"cache_tag": sys.implementation.cache_tag, "failed": failed}


if __name__ == "__main__":
    print(json.dumps(compile_all(json.loads(Path(sys.argv[1]).read_text()))))
