"""Small helpers for walking the canonical model (the API shape).

Sources guarantee that every member the API defines has its API type or is an
``Unresolved`` marker, so rules only need to tell those two apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from auditor.model import Unresolved
from auditor.patterns import LazyPattern
from auditor.rule import RuleContext

ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
KMS_ARN_RE = re.compile(r"^arn:(?P<partition>[^:]+):kms:(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.+)$")


def whole_match(pattern: str | None) -> LazyPattern:
    """A model pattern compiled to match a whole value, anchored at both ends.

    Some model patterns lack the trailing ``$`` (OrganizationalUnitArn), and Python's
    ``$`` also matches before a final newline; ``fullmatch`` has neither problem.
    """
    body = pattern or ".*"
    if body.startswith("^"):
        body = body[1:]
    if body.endswith("$") and not body.endswith("\\$"):
        body = body[:-1]
    return LazyPattern(body)


# The helpers below run for every rule and every distribution, so they build pointers
# with plain f-strings: API member names and list indices never need RFC 6901 escaping.
# Every rule walks the same configuration in turn: the last one's distributions are kept.
# (A configuration is not changed while it is audited; the list and its length are
# compared too, so a caller that reuses a dict for another configuration is not misled.)
_last: list[Any] = [None, None, -1, (), ()]  # configuration, its list, its length, distributions, AMIs


def _walked(config: Mapping[str, Any]) -> list[Any]:
    items = config.get("distributions")
    size = len(items) if isinstance(items, list) else -1
    if _last[0] is not config or _last[1] is not items or _last[2] != size:
        found = []
        if isinstance(items, list):
            found = [(f"/distributions/{index}", item) for index, item in enumerate(items) if isinstance(item, dict)]
        amis = [
            (f"{pointer}/amiDistributionConfiguration", dist["amiDistributionConfiguration"], dist)
            for pointer, dist in found
            if isinstance(dist.get("amiDistributionConfiguration"), dict)
        ]
        _last[:] = [config, items, size, tuple(found), tuple(amis)]
    return _last


def distributions(config: Mapping[str, Any]) -> Iterator[tuple[str, dict]]:
    """Yield ``(pointer, distribution)`` for every distribution object."""
    return iter(_walked(config)[3])


def ami_configs(config: Mapping[str, Any]) -> Iterator[tuple[str, dict, dict]]:
    """Yield ``(pointer, amiDistributionConfiguration, distribution)``."""
    return iter(_walked(config)[4])


def items(parent: Mapping[str, Any], key: str, pointer: str) -> Iterator[tuple[str, Any]]:
    """Yield ``(pointer, value)`` for each entry of a list member (none if absent).

    A whole list that is unresolved (``!Ref`` to a list parameter, ``var.groups``) is
    yielded once, at the list's pointer, so a rule that checks entries records it as
    unverified instead of passing it silently.
    """
    values = parent.get(key)
    if isinstance(values, list):
        base = f"{pointer}/{key}"
        for index, value in enumerate(values):
            yield f"{base}/{index}", value
    elif isinstance(values, Unresolved):
        yield f"{pointer}/{key}", values


def text(value: Any) -> str | None:
    """The literal string, or None when absent or unresolved."""
    return value if isinstance(value, str) else None


def is_unresolved(value: Any) -> bool:
    return isinstance(value, Unresolved)


def is_aws_managed_key(key: str) -> bool:
    """``alias/aws/ebs`` or its ARN form: keys whose policy the account cannot edit."""
    if "alias/aws/" not in key:  # most keys: no need to parse the ARN
        return False
    if key.startswith("alias/aws/"):
        return True
    match = KMS_ARN_RE.match(key)
    return bool(match and match.group("resource").startswith("alias/aws/"))


LAUNCH_PERMISSION_LISTS = ("userGroups", "userIds", "organizationArns", "organizationalUnitArns")


def launch_permission(ami: Mapping[str, Any]) -> dict:
    """The launch permission object; an unresolved one stands unresolved in each of its lists."""
    value = ami.get("launchPermission")
    if isinstance(value, Unresolved):
        return dict.fromkeys(LAUNCH_PERMISSION_LISTS, value)
    return value if isinstance(value, dict) else {}


def entries(value: Any) -> list[Any]:
    """A list member's entries; an unresolved list counts as one unknown entry."""
    if isinstance(value, Unresolved):
        return [value]
    return list(value) if isinstance(value, list) else []


def other_accounts(values: Any, ctx: RuleContext) -> list[Any]:
    """The entries of an account list that are not known to be the owner's own account.

    Unknown entries (an unresolved value, or any account while the owner is unknown)
    are kept: they may be another account.
    """
    return [v for v in entries(values) if ctx.is_own_account(v) is not True]


def target_accounts(ami: Mapping[str, Any], ctx: RuleContext) -> list[Any]:
    """``targetAccountIds`` that receive a copy of the AMI, the owner's own account left out."""
    return other_accounts(ami.get("targetAccountIds"), ctx)


def copies_for_accounts(ami: Mapping[str, Any], ctx: RuleContext) -> bool | None:
    """Whether the AMI is copied to other accounts: True, False, or None when the whole
    ``targetAccountIds`` list is unresolved (``var.accounts``: it may be empty)."""
    if isinstance(ami.get("targetAccountIds"), Unresolved):
        return None
    return bool(target_accounts(ami, ctx))


def region_label(dist: Mapping[str, Any]) -> str:
    """The distribution's region for messages: the name, or the unresolved expression."""
    region = dist.get("region")
    if isinstance(region, (str, Unresolved)):
        return str(region)
    return "its region"


def is_own_region(dist: Mapping[str, Any], config: Mapping[str, Any], ctx: RuleContext) -> bool | None:
    """Whether a distribution targets the configuration's own region: True, False or None.

    Besides the ARN (or owner-region) and CloudFormation/Terraform references to the own
    region, a region can be known *not* to be the own one: a Region appears at most once
    in a configuration, so when another distribution targets the own region, this one's
    (a literal, or an unresolved value equal to it would be rejected as a duplicate) is
    another region.
    """
    region = dist.get("region")
    own = ctx.is_own_region(region)
    if own is not None or not isinstance(region, (str, Unresolved)):
        return own
    if any(d is not dist and ctx.is_own_region(d.get("region")) is True for _, d in distributions(config)):
        return False
    return None
