"""IBD010 required-tags."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Violation, model_doc, option

from ._walk import ami_configs, is_unresolved


@dataclass(frozen=True)
class Options:
    required_tags: tuple[str, ...] = option((), "Tag keys every configuration and every AMI must carry.")


class RequiredTags(Rule):
    """The configuration and the AMIs it produces must carry the required tags.

    Why:
      A policy rule, off until you list tag keys: AWS requires no tags. Cost
      allocation, ownership and data-classification tags are how an estate is governed.
      `tags` label the distribution configuration itself; `amiTags` are the tags applied
      to the AMIs distributed to that Region. An untagged AMI in another account or
      region is an orphan nobody owns.

    Example:
      required-tags = ["owner"] and "amiTags": {"Name": "base"}

    Fix:
      Add the missing keys to `tags` and to each `amiDistributionConfiguration.amiTags`.
      The rule is off while the `required-tags` option is empty.
    """

    id = "IBD010"
    slug = "required-tags"
    severity = Severity.LOW
    summary = "Configuration tags and AMI tags must include the required keys"
    tags = ("governance", "tagging")
    Options = Options
    sources = (
        model_doc("AmiDistributionConfiguration.amiTags", "The tags to apply to AMIs distributed to this Region."),
    )

    def check(self, config, ctx):
        required = self.options.required_tags
        if not required:
            return
        yield from _missing(config.get("tags"), "", "tags", "configuration tags", required, ctx)
        for pointer, ami, _dist in ami_configs(config):
            yield from _missing(ami.get("amiTags"), pointer, "amiTags", "AMI tags", required, ctx)


def _missing(tags, parent, key, what, required, ctx):
    if is_unresolved(tags):
        ctx.cannot_verify(join_pointer(parent, key), f"{what} are not literal")
        return
    present = set(tags) if isinstance(tags, dict) else set()
    missing = [k for k in required if k not in present]
    if missing:
        path = join_pointer(parent, key) if isinstance(tags, dict) else parent
        yield Violation(path, f"{what} lack required key(s): {', '.join(missing)}")
