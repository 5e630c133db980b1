"""Writing a report or a baseline all at once.

A report is written to a temporary file beside it and renamed over the old one, so a
reader (a CI step, a browser, the next job) never sees half of it, and a failed write
leaves the previous file as it was. The rename replaces a symbolic link at that path
rather than writing through it. Device files and FIFOs (``/dev/null``, ``/dev/stdout``)
cannot be replaced and are written in place.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8; a lone surrogate is written as an escape)."""
    with open_atomic(path) as handle:
        handle.write(text)


@contextlib.contextmanager
def open_atomic(path: Path) -> Iterator[TextIO]:
    """A text stream that replaces ``path`` when the block ends without an exception.

    A report of any size is written straight to the temporary file, never held whole in
    memory. UTF-8; a lone surrogate is written as an escape.
    """
    try:
        info = os.stat(path)  # through a link: is what it points at a device?
    except OSError:
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
        with open(path, "w", encoding="utf-8", errors="backslashreplace") as handle:
            yield handle
        return
    if info is not None and stat.S_ISREG(info.st_mode):
        mode = stat.S_IMODE(info.st_mode)
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    import tempfile  # here, not at start-up: it imports random, shutil...

    fd, temporary = tempfile.mkstemp(prefix=".ib-audit-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as handle:
            yield handle
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def same_file_key(file: str) -> str | None:
    """What two output paths share when they are the same file (None for devices and FIFOs)."""
    try:
        info = os.stat(file)
    except OSError:
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode):
        return None  # /dev/null twice is harmless
    return os.path.realpath(file)
