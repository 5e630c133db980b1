"""Small helpers for walking the canonical model (the API shape).

Sources guarantee that every member the API defines has its API type or is an
``Unresolved`` marker, so rules only need to tell those two apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from auditor.model import Unresolved, join_pointer

ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
KMS_ARN_RE = re.compile(r"^arn:(?P<partition>[^:]+):kms:(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.+)$")


def distributions(config: Mapping[str, Any]) -> Iterator[tuple[str, dict]]:
    """Yield ``(pointer, distribution)`` for every distribution object."""
    items = config.get("distributions")
    if not isinstance(items, list):
        return
    for index, item in enumerate(items):
        if isinstance(item, dict):
            yield join_pointer("/distributions", index), item


def ami_configs(config: Mapping[str, Any]) -> Iterator[tuple[str, dict, dict]]:
    """Yield ``(pointer, amiDistributionConfiguration, distribution)``."""
    for pointer, dist in distributions(config):
        ami = dist.get("amiDistributionConfiguration")
        if isinstance(ami, dict):
            yield join_pointer(pointer, "amiDistributionConfiguration"), ami, dist


def items(parent: Mapping[str, Any], key: str, pointer: str) -> Iterator[tuple[str, Any]]:
    """Yield ``(pointer, value)`` for each entry of a list member (none if absent)."""
    values = parent.get(key)
    if isinstance(values, list):
        base = join_pointer(pointer, key)
        for index, value in enumerate(values):
            yield join_pointer(base, index), value


def text(value: Any) -> str | None:
    """The literal string, or None when absent or unresolved."""
    return value if isinstance(value, str) else None


def is_unresolved(value: Any) -> bool:
    return isinstance(value, Unresolved)


def is_aws_managed_key(key: str) -> bool:
    """``alias/aws/ebs`` or its ARN form: keys whose policy the account cannot edit."""
    if key.startswith("alias/aws/"):
        return True
    match = KMS_ARN_RE.match(key)
    return bool(match and match.group("resource").startswith("alias/aws/"))


def launch_permission(ami: Mapping[str, Any]) -> dict:
    value = ami.get("launchPermission")
    return value if isinstance(value, dict) else {}


def is_shared(ami: Mapping[str, Any]) -> bool:
    """The AMI reaches principals outside the building account."""
    perm = launch_permission(ami)
    members = ("userIds", "organizationArns", "organizationalUnitArns")
    return bool(ami.get("targetAccountIds")) or any(perm.get(m) for m in members)
