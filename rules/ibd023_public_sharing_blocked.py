"""IBD023 public-sharing-blocked (needs AWS context)."""

from __future__ import annotations

from auditor.facts import FactKey
from auditor.model import Severity
from auditor.rule import Rule, Source, Violation, model_doc

from ._context import distribution_pointer, one_entry_per_reason, region_of
from ._walk import ami_configs, items, launch_permission

KIND = "ec2-image-block-public-access"


def _distributions(config, ctx):
    """``(distribution pointer, public userGroups pointers, fact or None)`` per AMI distribution."""
    for pointer, ami, dist in ami_configs(config):
        perm_pointer = f"{pointer}/launchPermission"
        public = [
            p
            for p, v in items(launch_permission(ami), "userGroups", perm_pointer)
            if isinstance(v, str) and v.lower() == "all"
        ]
        region = region_of(dist, ctx)
        fact = FactKey(KIND, ctx.account, region) if region and ctx.account else None
        if fact is None:
            for path in public:
                ctx.cannot_verify(path, "the distribution's region or account is unknown")
        yield distribution_pointer(pointer), public, fact


class PublicSharingBlocked(Rule):
    """A public launch permission fails where the account blocks public sharing of AMIs.

    Needs AWS context (``ec2:GetImageBlockPublicAccessState``). The state is read for
    every AMI distribution's region and shown in the HTML report; the rule fires only
    for `userGroups: ["all"]`.

    Why:
      With block public access for AMIs enabled in a Region ("block-new-sharing"), any
      attempt to make an AMI public there is blocked ("Understand block public access
      for AMIs", Amazon EC2 User Guide); new accounts have it on by default. Image
      Builder's distribution then fails after the build with "You can't publicly share
      this image because block public access for AMIs is enabled". IBD002 reports the
      public permission itself; this rule says the distribution will not even succeed.

    Example:
      {"region": "us-east-1", "amiDistributionConfiguration":
        {"launchPermission": {"userGroups": ["all"]}}}   in an account with
      block public access for AMIs enabled in us-east-1

    Fix:
      Remove `all` and share with accounts, organizations or OUs instead; or, if the
      AMI must be public, disable block public access for AMIs in that Region
      (`aws ec2 disable-image-block-public-access`) where a declarative policy allows it.
    """

    id = "IBD023"
    slug = "public-sharing-blocked"
    severity = Severity.MEDIUM
    summary = "A public AMI distribution fails where block public access for AMIs is on"
    tags = ("reliability", "sharing", "public", "aws-context")
    sources = (
        model_doc(
            "GetImageBlockPublicAccessStateResult.ImageBlockPublicAccessState",
            "block-new-sharing - Any attempt to publicly share your AMIs in the specified Region is blocked.",
            "ec2",
        ),
        Source(
            "Amazon EC2 User Guide, Understand block public access for AMIs",
            "When block public access is enabled, any attempt to make an AMI public is automatically blocked.",
        ),
    )
    facts = (KIND,)

    def requests(self, config, ctx):
        return [fact for _d, _p, fact in _distributions(config, ctx) if fact is not None]

    @one_entry_per_reason
    def check(self, config, ctx):
        for dist_pointer, public, fact_key in _distributions(config, ctx):
            if fact_key is None:
                continue
            fact = ctx.fact(fact_key)
            if not fact.known:
                ctx.note(dist_pointer, "Block public access for AMIs", f"could not verify ({fact.error})")
                for path in public:
                    ctx.cannot_verify(path, fact.error)
                continue
            state, managed = fact.value.get("state"), fact.value.get("managed_by")
            shown = f"{state} (managed by {managed})" if managed else str(state)
            ctx.note(dist_pointer, "Block public access for AMIs", shown)
            if state == "block-new-sharing":
                for path in public:
                    yield Violation(
                        path,
                        f"block public access for AMIs is on in account {fact_key.account}, {fact_key.region} "
                        f"({shown}): the public launch permission fails the distribution",
                    )
