"""IBD011 region-policy."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Violation, option

from ._walk import distributions, is_unresolved, text


@dataclass(frozen=True)
class Options:
    allowed_regions: tuple[str, ...] = option((), "Regions images may be distributed to; empty: any.")


class RegionPolicy(Rule):
    """Distributions must target allowed regions, each at most once.

    Why:
      Data-residency and sovereignty rules often forbid copying images (and the data
      baked into them) to some regions. Two distributions for the same region are
      rejected by the API or silently overwrite each other's settings.

    Example:
      "distributions": [{"region": "us-east-1"}, {"region": "us-east-1"}]

    Fix:
      Keep one distribution per region and only regions listed in `allowed-regions`.
    """

    id = "IBD011"
    slug = "region-policy"
    severity = Severity.MEDIUM
    summary = "Distributions must target allowed regions, each only once"
    tags = ("compliance", "regions")
    Options = Options

    def check(self, config, ctx):
        allowed = set(self.options.allowed_regions)
        seen: dict[str, str] = {}
        for pointer, dist in distributions(config):
            region = dist.get("region")
            path = join_pointer(pointer, "region")
            if is_unresolved(region):
                if allowed:
                    ctx.cannot_verify(path, "region is not a literal")
                continue
            region = text(region)
            if region is None:
                continue
            if allowed and region not in allowed:
                yield Violation(path, f"region {region} is not in allowed-regions")
            if region in seen:
                yield Violation(path, f"region {region} is already distributed to by {seen[region]}")
            else:
                seen[region] = pointer
