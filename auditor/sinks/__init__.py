"""Sinks: places a scan's results are sent to instead of a file (Security Hub).

A sink sits beside the reporters (DESIGN.md, "Growing the flow") and shares their
finding identity, the fingerprint. The built-in one is registered like any plugin's;
its module, and boto3 with it, loads only when the sink is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from auditor.hookspecs import hookimpl
from auditor.model import AuditResult, InputError


@dataclass
class SinkContext:
    """What the scan knows about reaching AWS, for sinks that write there."""

    aws: Any = None  # auditor.sources.aws.AwsOptions of the live scan, if any
    org: Any = None  # auditor.sources.org.OrgOptions when accounts were reached through a role
    # The listings of this live run that completed without a problem: (account, region) ->
    # every configuration ARN listed there (account None: the scan's own credentials).
    # A configuration not listed in such a listing no longer exists. Empty for --arn scans.
    listed: Mapping[tuple[str | None, str], frozenset[str]] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class SinkReport:
    """What a sink did: errors (they make the scan incomplete) and a JSON-able summary."""

    errors: list[InputError] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


class Sink(Protocol):
    name: str
    description: str

    def send(self, result: AuditResult, context: SinkContext) -> SinkReport:
        """Send the result; never raise for a problem of one destination, report it."""


class LazySink:
    """A sink whose module (and its imports) loads only when it sends."""

    def __init__(self, name: str, module: str, description: str) -> None:
        self.name, self.module, self.description = name, module, description

    def send(self, result: AuditResult, context: SinkContext) -> SinkReport:
        return importlib.import_module(f"{__name__}.{self.module}").send(result, context)


@hookimpl
def auditor_add_sinks():
    return [
        LazySink(
            "security-hub",
            "securityhub",
            "AWS Security Hub in each finding's own account and region; fixed findings archived as PASSED",
        )
    ]
