"""Shared by the account-context rules (IBD020-IBD027): where each fact lives.

A fact belongs to an account and a region. The distribution's ``region`` names the
region; an unresolved region that stands for the deploying region (``AWS::Region``)
is the scan's region. Accounts are literal 12-digit ids, or an unresolved value that
stands for the deploying account. Anything else cannot be looked up, and the rule
says so ("could not verify") instead of guessing.

A fact that cannot be known usually stands in the way of every reference to it (one
account named in three distributions, the key policy every recipient depends on):
each rule lists it once per configuration and reason (``one_entry_per_reason``), and
the reports group those entries across configurations.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from auditor.facts import FactKey
from auditor.model import OWN_ACCOUNT, OWN_REGION, Unresolved, join_pointer
from auditor.rule import RuleContext, Source

from ._walk import ACCOUNT_RE, KMS_ARN_RE, items, launch_permission

ORG_ARN_RE = re.compile(r"^arn:[^:]+:organizations::\d{12}:(?:organization|ou)/(?P<org>o-[a-z0-9]{10,32})(?:/|$)")
DISTRIBUTION_ROLE = "EC2ImageBuilderDistributionCrossAccountRole"
DISTRIBUTION_POLICY = "Ec2ImageBuilderCrossAccountDistributionAccess"


def partition(region: str | None) -> str:
    """The ARN partition of a region (``aws``, ``aws-cn``, ``aws-us-gov``)."""
    if region and region.startswith("cn-"):
        return "aws-cn"
    if region and region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def region_of(dist: Mapping[str, Any], ctx: RuleContext) -> str | None:
    """The distribution's region, when it is known."""
    value = dist.get("region")
    if isinstance(value, str):
        return value
    if isinstance(value, Unresolved) and value.refers_to == OWN_REGION:
        return ctx.region
    return None


def account_of(value: Any, ctx: RuleContext) -> str | None:
    """A literal account id, or the deploying account for ``AWS::AccountId``-like values."""
    if isinstance(value, str) and ACCOUNT_RE.match(value):
        return value
    if isinstance(value, Unresolved) and value.refers_to == OWN_ACCOUNT:
        return ctx.account
    return None


def kms_key_fact(kind: str, key_id: str, region: str, account: str | None) -> FactKey | None:
    """Where a key as written lives: an ARN says its account and region; an id or alias
    resolves in the deploying account, in the distribution's region."""
    match = KMS_ARN_RE.match(key_id)
    if match:
        return FactKey(kind, match.group("account"), match.group("region"), key_id)
    return FactKey(kind, account, region, key_id) if account else None


def recipients(ami: Mapping[str, Any], pointer: str) -> Iterator[tuple[str, str, Any]]:
    """``(pointer, how, value)`` for every account or organization the AMI reaches:
    ``copy`` (targetAccountIds), ``launch`` (launchPermission.userIds), ``organization``
    and ``ou`` (launchPermission.organizationArns / organizationalUnitArns)."""
    yield from ((p, "copy", v) for p, v in items(ami, "targetAccountIds", pointer))
    perm_pointer = join_pointer(pointer, "launchPermission")
    perm = launch_permission(ami)
    yield from ((p, "launch", v) for p, v in items(perm, "userIds", perm_pointer))
    yield from ((p, "organization", v) for p, v in items(perm, "organizationArns", perm_pointer))
    yield from ((p, "ou", v) for p, v in items(perm, "organizationalUnitArns", perm_pointer))


def distribution_pointer(ami_pointer: str) -> str:
    """``/distributions/0`` for ``/distributions/0/amiDistributionConfiguration``."""
    return ami_pointer.rsplit("/", 1)[0]


def principal_org(ctx: RuleContext, account: str) -> dict[str, Any]:
    """What is known of ``account``'s organization, for ``aws:PrincipalOrgID`` conditions:
    keyword arguments for ``auditor.context.policy.Principal``. Only a member list says
    an account is in the scanning organization (or, by its absence, that it is not)."""
    org = ctx.fact(FactKey("organization", "", ""))
    if not org.known or org.value is None:
        return {}
    members = ctx.fact(FactKey("organization-accounts", "", ""))
    if not members.known:
        return {}
    org_id = org.value.get("Id")
    if account in members.value:
        return {"org_id": org_id, "org_known": True}
    return {"not_orgs": frozenset({org_id})}


def known(ctx: RuleContext, path: str, key: FactKey, about: str | None = None) -> tuple[bool, Any]:
    """``(True, value)`` of a fact, or ``(False, None)`` once it is listed as could-not-verify at ``path``.

    ``about`` names what the fact is about ("role X in account 444455556666") in the
    reason when the reason does not name the fact's account itself ("AccessDenied on
    iam:GetRole" does not), so that entries about different accounts never read alike.
    """
    fact = ctx.fact(key)
    if fact.known:
        return True, fact.value
    reason = fact.error or "unknown"
    if about is not None and key.account not in reason:
        reason = f"{about}: {reason}"
    ctx.cannot_verify(path, reason)
    return False, None


def common_pointer(pointers: Iterable[str]) -> str:
    """The deepest JSON Pointer that holds every one of ``pointers`` ("" is the whole document)."""
    split = [p.split("/") for p in pointers]
    shared = []
    for tokens in zip(*split, strict=False):
        if len(set(tokens)) != 1:
            break
        shared.append(tokens[0])
    return "/".join(shared)


def one_entry_per_reason(check: Callable) -> Callable:
    """Decorate a rule's ``check``: the could-not-verify entries it records with one reason
    become one entry, at the pointer that holds every reference they were recorded at.

    One unknown fact (an account the scan cannot read, a key policy it may not get)
    otherwise repeats for each reference to it; the configuration is just as unverified,
    and a reviewer needs to read it once.
    """

    @functools.wraps(check)
    def checked(self, config, ctx: RuleContext):
        start = len(ctx.unverified)
        yield from check(self, config, ctx)
        by_reason: dict[str, list[str]] = {}
        for path, reason in ctx.unverified[start:]:
            by_reason.setdefault(reason, []).append(path)
        ctx.unverified[start:] = [(common_pointer(paths), reason) for reason, paths in by_reason.items()]

    return checked


_API_TITLES = {
    "kms": "AWS KMS API Reference",
    "s3": "Amazon S3 API Reference",
    "organizations": "AWS Organizations API Reference",
    "ecr": "Amazon ECR API Reference",
}


def api_doc(service: str, shape: str, quote: str) -> Source:
    """A quote from botocore's model of a service other than Image Builder and EC2 (checked by a test)."""
    return Source(f"{_API_TITLES[service]}, {shape} (botocore {service} model)", quote, shape, service)


CROSS_ACCOUNT_GUIDE = "EC2 Image Builder User Guide, Set up cross-account AMI distribution with Image Builder"
