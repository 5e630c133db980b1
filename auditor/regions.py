"""AWS partitions and region names, from the data botocore ships (frozen, offline).

The lists come from botocore's ``partitions.json`` through scripts/gen_api_model.py, so
a scan never imports botocore. A region launched after that botocore release is unknown
here: IBD011 takes extra names in its ``extra-regions`` option.
"""

from __future__ import annotations

import re

from auditor._api_model import PARTITIONS

KNOWN_REGIONS: dict[str, str] = {
    region: partition for partition, spec in PARTITIONS.items() for region in spec["regions"]
}


def partition_of(region: str) -> str | None:
    """The partition (``aws``, ``aws-cn``...) a region name belongs to, or None."""
    known = KNOWN_REGIONS.get(region)
    if known is not None:
        return known
    # A name the data does not list: the partitions' own patterns (re caches them).
    return next((partition for partition, spec in PARTITIONS.items() if re.match(spec["regex"], region)), None)


def _distance(a: str, b: str) -> int:
    """Levenshtein distance: typos in region names are one or two edits."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def suggest(region: str) -> list[str]:
    """The known region names closest to a misspelt one (all of them on a tie), for a did-you-mean."""
    scored = sorted((_distance(region.lower(), known), known) for known in KNOWN_REGIONS)
    best = scored[0][0] if scored else None
    return [known for score, known in scored if score == best] if best is not None and best <= 2 else []


def problem(region: str, extra: frozenset[str] | set[str] = frozenset()) -> str | None:
    """Why a region name is not one AWS has, or None when it is known (or listed in ``extra``)."""
    if region in KNOWN_REGIONS or region in extra:
        return None
    hints = suggest(region)
    did_you_mean = f"; did you mean {' or '.join(map(repr, hints))}?" if hints else ""
    return f"{region!r} is not an AWS region{did_you_mean}"
