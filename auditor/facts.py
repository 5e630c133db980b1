"""The name of one fact about the rest of the account (``FactKey``) and its answer (``Fact``).

Apart from ``auditor.context`` (the store that fetches facts, with its threads) so that
the rules which name facts cost nothing to import on the offline path, which never
fetches any.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class FactKey:
    """One fact: its kind, the account that owns it, the region ("" when global) and an id."""

    kind: str
    account: str  # "" for the scanning credentials themselves (their organization)
    region: str
    id: str = ""

    def display(self) -> str:
        where = "/".join(p for p in (self.account, self.region) if p)
        return f"{self.kind} {self.id} ({where})" if where else f"{self.kind} {self.id}"


@dataclass(frozen=True)
class Fact:
    """A fetched fact: its value (None can mean "does not exist"), or why it is unknown."""

    key: FactKey
    value: Any = None
    error: str | None = None

    @property
    def known(self) -> bool:
        return self.error is None
