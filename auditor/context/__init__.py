"""Account context: facts about the rest of the account that decide whether a
distribution will succeed (KMS keys, roles in target accounts, image block public
access, launch templates, buckets, repositories, organization members).

Rules never call AWS. A rule names the facts it needs (``FactKey``: kind, owning
account, region, id); fact providers, contributed through the
``auditor_add_fact_providers`` hook, fetch them; the ``FactStore`` fetches each
distinct key once per run, in parallel, and caches the answer. A call that is denied
or fails becomes a ``Fact`` with an ``error`` ("AccessDenied on kms:GetKeyPolicy"),
which rules report under "could not verify", never as a finding or a pass.

Nothing here imports boto3: the calls go through an ``AccountAccess`` that the live
and ``--aws-context`` paths build (``auditor.context.aws``).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from auditor.facts import Fact, FactKey

log = logging.getLogger("ib_audit.context")

__all__ = ["Fact", "FactKey"]


class Unavailable(Exception):
    """A fact cannot be known; ``reason`` is what "could not verify" shows."""

    @property
    def reason(self) -> str:
        return str(self)


class CallFailed(Unavailable):
    """An AWS call failed for good (denied, throttled past retries, an unexpected error)."""

    def __init__(self, operation: str, code: str, message: str = "") -> None:
        super().__init__(f"{code} on {operation}")
        self.operation = operation  # "kms:GetKeyPolicy"
        self.code = code  # "AccessDenied", "NotFoundException", "throttled"...
        self.message = message


class NoAccess(Unavailable):
    """There are no credentials for the account a fact lives in; the message says why."""


class Caller(Protocol):
    """AWS calls in one account and region, with the live scan's retries and pacing."""

    def __call__(self, service: str, operation: str, **params: Any) -> dict:
        """Call ``operation`` (boto3's snake_case name); raise ``CallFailed``."""


class AccountAccess(Protocol):
    """Who may be called in which account (built by the live and --aws-context paths)."""

    home_account: str | None  # the account a file deploys into (--aws-context)
    home_region: str | None  # the region it deploys into

    def caller(self, account: str, region: str) -> Caller:
        """Calls in ``account`` ("" = the scanning credentials) and ``region``; raise ``NoAccess``."""


class FactProvider(Protocol):
    """Fetches one kind of fact. Built-ins live in ``auditor.context.providers``."""

    kind: str  # e.g. "kms-key"
    actions: tuple[str, ...]  # the IAM actions it may need, for `ib-audit rules` and the README

    def fetch(self, key: FactKey, call: Caller, facts: FactStore) -> Any:
        """Return the fact's value (None for "does not exist"); raise ``CallFailed``.

        ``facts`` gives other facts this one depends on (a key policy needs the key's
        ARN, which DescribeKey resolves from an alias); each is fetched once too.
        """


class FactStore:
    """Every fact of one run, each fetched at most once, in parallel where asked."""

    def __init__(self, providers: Mapping[str, FactProvider], access: AccountAccess, *, workers: int = 16) -> None:
        self.providers = dict(providers)
        self.access = access
        self.workers = max(1, workers)
        self._lock = threading.Lock()
        self._futures: dict[FactKey, Future] = {}
        self.fetches: Counter[str] = Counter()  # kind -> distinct keys fetched

    @property
    def home_account(self) -> str | None:
        return self.access.home_account

    @property
    def home_region(self) -> str | None:
        return self.access.home_region

    def get(self, key: FactKey) -> Fact:
        """The fact, fetched now in this thread unless another thread already has it."""
        with self._lock:
            future = self._futures.get(key)
            mine = future is None
            if mine:
                future = self._futures[key] = Future()
                self.fetches[key.kind] += 1
        if mine:
            future.set_result(self._fetch(key))
        return future.result()

    def seed(self, fact: Fact) -> None:
        """Record a fact the scan already learned (the organization's members, listed to
        find the accounts to scan), so that it is not fetched again; a fact already
        fetched stays as it is."""
        with self._lock:
            if fact.key not in self._futures:
                future: Future = Future()
                future.set_result(fact)
                self._futures[fact.key] = future

    def prefetch(self, keys: Iterable[FactKey]) -> None:
        """Fetch the distinct keys not yet known, ``workers`` at a time."""
        wanted = sorted({k for k in keys if k not in self._futures})
        if not wanted:
            return
        log.info("fetching %d account-context fact(s)", len(wanted))
        with ThreadPoolExecutor(min(self.workers, len(wanted))) as pool:
            list(pool.map(self.get, wanted))

    def known(self) -> dict[FactKey, Fact]:
        """Every fact fetched so far (for reports)."""
        with self._lock:
            futures = dict(self._futures)
        return {k: f.result() for k, f in futures.items() if f.done()}

    def _fetch(self, key: FactKey) -> Fact:
        provider = self.providers.get(key.kind)
        if provider is None:
            return Fact(key, error=f"no fact provider for {key.kind!r}")
        try:
            call = self.access.caller(key.account, key.region)
            return Fact(key, value=provider.fetch(key, call, self))
        except Unavailable as exc:
            return Fact(key, error=exc.reason)
        except Exception as exc:  # a provider bug must not end the scan; it is reported per fact
            log.info("fact %s: %s: %s", key.display(), type(exc).__name__, exc)
            return Fact(key, error=f"fact provider {key.kind} raised {type(exc).__name__}: {exc}")
