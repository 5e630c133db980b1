"""IBD024 launch-template-missing (needs AWS context)."""

from __future__ import annotations

from auditor.facts import FactKey
from auditor.model import Severity, Unresolved, join_pointer
from auditor.rule import Rule, Source, Violation, model_doc

from ._context import account_of, known, one_entry_per_reason, region_of
from ._walk import distributions, items

TEMPLATE = "ec2-launch-template"
DEFAULT_VPC = "ec2-default-vpc"


def _subjects(config, ctx):
    """``(pointer, fact, what)`` for every launch template named and every fast launch
    without one (which needs a default VPC)."""
    for pointer, dist in distributions(config):
        region = region_of(dist, ctx)
        for entry_pointer, entry in items(dist, "launchTemplateConfigurations", pointer):
            if isinstance(entry, dict) and "launchTemplateId" in entry:
                path = join_pointer(entry_pointer, "launchTemplateId")
                where = _where(entry, ctx, region, path)
                template = entry["launchTemplateId"]
                if where and isinstance(template, str):
                    yield path, FactKey(TEMPLATE, *where, f"id:{template}"), f"launch template {template}"
                elif isinstance(template, Unresolved):
                    ctx.cannot_verify(path, "the launch template id is not a literal")
        for entry_pointer, entry in items(dist, "fastLaunchConfigurations", pointer):
            if not isinstance(entry, dict) or entry.get("enabled") is False:
                continue
            template = entry.get("launchTemplate")
            if isinstance(template, dict):
                for member, by in (("launchTemplateId", "id"), ("launchTemplateName", "name")):
                    value = template.get(member)
                    path = join_pointer(entry_pointer, "launchTemplate", member)
                    where = _where(entry, ctx, region, path) if member in template else None
                    if where and isinstance(value, str):
                        yield path, FactKey(TEMPLATE, *where, f"{by}:{value}"), f"launch template {value}"
                    elif isinstance(value, Unresolved):
                        ctx.cannot_verify(path, "the launch template is not a literal")
            elif template is None:
                where = _where(entry, ctx, region, entry_pointer)
                if where:
                    yield entry_pointer, FactKey(DEFAULT_VPC, *where), "a default VPC (fast launch without a template)"


def _where(entry, ctx, region, path) -> tuple[str, str] | None:
    """The account (``accountId``, else the deploying account) and region the entry acts in."""
    named = entry.get("accountId")
    account = account_of(named, ctx) if "accountId" in entry else ctx.account
    if account is not None and region is not None:
        return account, region
    if not isinstance(named, str) or region is None:  # a malformed literal id is IBD006's
        ctx.cannot_verify(path, "the account or region it acts in is unknown")
    return None


class LaunchTemplateMissing(Rule):
    """Launch templates named by a distribution must exist; fast launch without one needs a default VPC.

    Needs AWS context (``ec2:DescribeLaunchTemplates``, ``ec2:DescribeVpcs``) in the
    account each entry names (``accountId``; other accounts through an organization
    scan's role).

    Why:
      Image Builder adds a new version with the new AMI to each launch template in
      `launchTemplateConfigurations`, and Windows fast launch launches from its
      template; a template that does not exist in that account and Region fails the
      distribution after the build. Without a template, fast launch uses the default
      VPC, which must exist ("EC2 Fast Launch prerequisites for Windows", Amazon EC2
      User Guide: if you don't use a launch template, ensure that a default VPC is
      configured for the Region).

    Example:
      "launchTemplateConfigurations": [{"launchTemplateId": "lt-0123456789abcdef0"}]
      where no such template exists in the distribution's region

    Fix:
      Create the launch template in that account and Region (or correct its id or
      name); for fast launch, name a template or create a default VPC
      (`aws ec2 create-default-vpc`).
    """

    id = "IBD024"
    slug = "launch-template-missing"
    severity = Severity.MEDIUM
    summary = "Launch templates a distribution names must exist in that account and region"
    tags = ("reliability", "launch-template", "aws-context")
    sources = (
        model_doc("LaunchTemplateConfiguration.launchTemplateId", "Identifies the Amazon EC2 launch template to use."),
        model_doc(
            "FastLaunchConfiguration.launchTemplate",
            "The launch template that the fast-launch enabled Windows AMI uses when it launches Windows instances to "
            "create pre-provisioned snapshots.",
        ),
        Source(
            "Amazon EC2 User Guide, EC2 Fast Launch prerequisites for Windows",
            "If you don't use a launch template to configure your settings, ensure that a default VPC is configured "
            "for the Region in which you use Windows fast launch.",
        ),
    )
    facts = (TEMPLATE, DEFAULT_VPC)

    def requests(self, config, ctx):
        return [fact for _p, fact, _w in _subjects(config, ctx)]

    @one_entry_per_reason
    def check(self, config, ctx):
        for path, fact_key, what in _subjects(config, ctx):
            ok, value = known(ctx, path, fact_key)
            if ok and value is None:
                where = f"account {fact_key.account}, {fact_key.region}"
                if fact_key.kind == DEFAULT_VPC:
                    yield Violation(path, f"fast launch has no launch template and there is no default VPC in {where}")
                else:
                    yield Violation(path, f"{what} does not exist in {where}")
