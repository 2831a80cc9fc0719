"""Writing records as JSON Lines (the ledger's canonical file format), atomically.

The file is written under a temporary name in the target's directory and renamed into place only
when complete, so a reader never sees a half-written file, and a failure leaves any previous file
untouched. A name ending in ``.gz`` is gzip-compressed (reproducibly: no timestamp in the header);
``-`` writes to standard output.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

CHUNK = 4_096  # records serialised per write
GZIP_LEVEL = 6  # zlib's default: most of level 9's compression at a fraction of its time


def _write(records: Iterable[dict[str, Any]], write: Callable[[bytes], object]) -> int:
    count = 0
    chunk: list[bytes] = []
    for record in records:
        chunk.append(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
        if len(chunk) == CHUNK:
            write(b"".join(chunk))
            count += len(chunk)
            chunk.clear()
    write(b"".join(chunk))
    return count + len(chunk)


def write_jsonl(records: Iterable[dict[str, Any]], path: Path | str) -> int:
    """Write one record per line to ``path`` (".gz": gzip, "-": stdout); return the count."""
    if str(path) == "-":
        count = _write(records, sys.stdout.buffer.write)
        sys.stdout.buffer.flush()
        return count
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        with temporary.open("xb") as raw:
            if target.suffix == ".gz":
                name = target.stem
                with gzip.GzipFile(name, "wb", GZIP_LEVEL, raw, mtime=0) as packed:
                    count = _write(records, packed.write)
            else:
                count = _write(records, raw.write)
            raw.flush()
            os.fsync(raw.fileno())
        temporary.replace(target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return count
