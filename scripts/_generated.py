"""The one ``main`` of every generator in this directory: write the file, or check it.

``python scripts/gen_X.py`` writes its output; ``--check`` (what the tests run) exits 1
when the committed file differs from what the generator would write now.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


def write_or_check(out: Path, text: str, argv: Sequence[str], script: str, volatile: tuple[str, ...] = ()) -> int:
    """Write ``text`` to ``out``, or with ``--check`` compare them.

    Lines starting with one of ``volatile`` (a generator's version or date stamp) are
    left out of the comparison: they may move while what the file says must not.
    """
    if "--check" in argv:
        current = out.read_text(encoding="utf-8") if out.exists() else None

        def kept(text: str) -> list[str]:
            return [line for line in text.splitlines() if not (volatile and line.startswith(volatile))]

        if current is None or kept(current) != kept(text):
            print(f"{out} is stale: run python scripts/{script}", file=sys.stderr)
            return 1
        return 0
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0
