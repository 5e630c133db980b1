"""IBD003 fast-launch-bounds."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Violation, option

from ._walk import distributions, items

# EC2 EnableFastLaunch rejects fewer than 6 parallel launches; the Image Builder model
# only says min 1, so the API accepts a value EC2 later refuses.
EC2_MIN_PARALLEL_LAUNCHES = 6


@dataclass(frozen=True)
class Options:
    max_parallel_launches: int = option(50, "Largest maxParallelLaunches allowed.", minimum=EC2_MIN_PARALLEL_LAUNCHES)
    max_target_resource_count: int = option(50, "Largest snapshotConfiguration.targetResourceCount allowed.", minimum=1)


class FastLaunchBounds(Rule):
    """Windows fast-launch settings must be within what EC2 accepts and your budget allows.

    Why:
      EC2 fast launch pre-provisions snapshots by launching instances in your account.
      `maxParallelLaunches` below 6 is rejected by EC2 (the Image Builder model accepts
      1), so the distribution fails after the build. Large values and large
      `targetResourceCount` launch many instances and keep many snapshots: a cost and
      quota surprise. Without a launch template, EC2 launches the pre-provisioning
      instances in the default VPC with default settings; naming a template by both id
      and name is ambiguous and rejected.

    Example:
      "fastLaunchConfigurations": [{"enabled": true, "maxParallelLaunches": 2}]

    Fix:
      Set `maxParallelLaunches` between 6 and the `max-parallel-launches` option (50),
      `snapshotConfiguration.targetResourceCount` between 1 and
      `max-target-resource-count`, and a `launchTemplate` with either
      `launchTemplateId` or `launchTemplateName`.
    """

    id = "IBD003"
    slug = "fast-launch-bounds"
    severity = Severity.MEDIUM
    summary = "Windows fast-launch settings must be within EC2's bounds and configured limits"
    tags = ("reliability", "cost", "fast-launch")
    Options = Options

    def check(self, config, ctx):
        opts = self.options
        for dist_pointer, dist in distributions(config):
            for pointer, entry in items(dist, "fastLaunchConfigurations", dist_pointer):
                if not isinstance(entry, dict):
                    continue
                parallel = entry.get("maxParallelLaunches")
                if (
                    isinstance(parallel, int)
                    and not EC2_MIN_PARALLEL_LAUNCHES <= parallel <= opts.max_parallel_launches
                ):
                    yield Violation(
                        join_pointer(pointer, "maxParallelLaunches"),
                        f"maxParallelLaunches is {parallel}; EC2 fast launch needs "
                        f"{EC2_MIN_PARALLEL_LAUNCHES}..{opts.max_parallel_launches}",
                    )
                snapshot = entry.get("snapshotConfiguration")
                if isinstance(snapshot, dict):
                    count = snapshot.get("targetResourceCount")
                    if isinstance(count, int) and not 1 <= count <= opts.max_target_resource_count:
                        yield Violation(
                            join_pointer(pointer, "snapshotConfiguration", "targetResourceCount"),
                            f"targetResourceCount is {count}; allowed 1..{opts.max_target_resource_count}",
                        )
                template = entry.get("launchTemplate")
                if entry.get("enabled") is True and template is None:
                    yield Violation(pointer, "fast launch is enabled without a launchTemplate; name one")
                elif isinstance(template, dict) and "launchTemplateId" in template and "launchTemplateName" in template:
                    yield Violation(
                        join_pointer(pointer, "launchTemplate"),
                        "launchTemplate names both launchTemplateId and launchTemplateName; keep one",
                    )
