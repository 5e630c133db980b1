"""IBD003 fast-launch-bounds."""

from __future__ import annotations

from dataclasses import dataclass

from auditor import apimodel
from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Source, Violation, model_doc, option

from ._walk import distributions, is_unresolved, items

# EC2 EnableFastLaunch rejects fewer than 6 parallel launches; the Image Builder model
# only says min 1, so the API accepts a value EC2 later refuses.
EC2_MIN_PARALLEL_LAUNCHES = 6
# EC2's default quota for max parallel launches, for all fast-launch AMIs of an account
# in a Region together (raise the option when your quota is higher).
DEFAULT_PARALLEL_LAUNCH_QUOTA = 40
# Above this the API itself rejects the value (IBD017 reports it): the policy cap is below.
API_MAX_TARGET_RESOURCE_COUNT = apimodel.shape("TargetResourceCount")["max"]


@dataclass(frozen=True)
class Options:
    max_parallel_launches: int = option(
        DEFAULT_PARALLEL_LAUNCH_QUOTA,
        "Policy cap on maxParallelLaunches (default: EC2's default per-Region quota for all fast-launch AMIs).",
        minimum=EC2_MIN_PARALLEL_LAUNCHES,
    )
    max_target_resource_count: int = option(
        API_MAX_TARGET_RESOURCE_COUNT,
        "Policy cap on snapshotConfiguration.targetResourceCount (default: the API's maximum, which IBD017 checks).",
        minimum=1,
    )
    require_launch_template: bool = option(
        False, "Report an enabled entry without a launch template at the rule's severity instead of info."
    )


class FastLaunchBounds(Rule):
    """Enabled Windows fast-launch settings must be ones EC2 accepts and your quota covers.

    Why:
      EC2 fast launch pre-provisions snapshots by launching instances in your account,
      and only when an entry is `enabled`. EC2 rejects `maxParallelLaunches` below 6
      (the Image Builder model accepts 1), so the distribution fails after the build.
      Above that, `max-parallel-launches` is a policy cap, not an EC2 limit: its default,
      40, is EC2's default quota for parallel launches of all fast-launch AMIs in a
      Region together, so one entry above it cannot be met without a quota increase.
      `targetResourceCount` has a policy cap too (default: the API's own maximum). A launch
      template named by both id and name is rejected. Without a launch template EC2
      launches the pre-provisioning instances in the default VPC, which works when
      the Region has one: reported as info.

    Example:
      "fastLaunchConfigurations": [{"enabled": true, "maxParallelLaunches": 2}]

    Fix:
      Set `maxParallelLaunches` between 6 and your quota (the `max-parallel-launches`
      option), and a `launchTemplate` with either `launchTemplateId` or
      `launchTemplateName`, not both.
    """

    id = "IBD003"
    slug = "fast-launch-bounds"
    severity = Severity.MEDIUM
    summary = "Enabled Windows fast-launch settings must be within EC2's bounds and your quota"
    tags = ("reliability", "cost", "fast-launch")
    Options = Options
    sources = (
        model_doc(
            "EnableFastLaunchRequest.MaxParallelLaunches",
            "The maximum number of instances that Amazon EC2 can launch at the same time to create pre-provisioned "
            "snapshots for Windows fast launch. Value must be 6 or greater.",
            "ec2",
        ),
        model_doc(
            "EnableFastLaunchRequest.LaunchTemplate",
            "Launch template parameters can include either the name or ID of the launch template, but not both.",
            "ec2",
        ),
        model_doc(
            "FastLaunchConfiguration.enabled",
            "A value of false means Image Builder takes no fast-launch action for this configuration.",
        ),
        Source(
            "Amazon EC2 User Guide for Windows Instances, Windows fast launch prerequisites",
            "If you don't use a launch template to configure your settings, ensure that a default VPC is configured "
            "for the Region in which you use Windows fast launch.",
        ),
        Source(
            "Amazon EC2 User Guide for Windows Instances, Windows fast launch prerequisites",
            "The default quota for Max parallel launches across all AMIs in an Amazon Web Services account is 40 "
            "per Region.",
        ),
    )

    def check(self, config, ctx):
        opts = self.options
        for dist_pointer, dist in distributions(config):
            for pointer, entry in items(dist, "fastLaunchConfigurations", dist_pointer):
                if not isinstance(entry, dict):
                    continue
                enabled = entry.get("enabled")
                if is_unresolved(enabled):
                    ctx.cannot_verify(join_pointer(pointer, "enabled"), "whether fast launch is enabled is unknown")
                    continue
                if enabled is not True:
                    continue  # Image Builder takes no fast-launch action
                yield from self._parallel(entry, pointer)
                snapshot = entry.get("snapshotConfiguration")
                count = snapshot.get("targetResourceCount") if isinstance(snapshot, dict) else None
                cap = opts.max_target_resource_count
                if isinstance(count, int) and cap < count <= API_MAX_TARGET_RESOURCE_COUNT:
                    yield Violation(
                        join_pointer(pointer, "snapshotConfiguration", "targetResourceCount"),
                        f"targetResourceCount is {count}, above the max-target-resource-count policy cap of {cap}",
                    )
                yield from self._template(entry, pointer, ctx)

    def _parallel(self, entry, pointer):
        parallel = entry.get("maxParallelLaunches")
        if not isinstance(parallel, int) or isinstance(parallel, bool):
            return
        path = join_pointer(pointer, "maxParallelLaunches")
        cap = self.options.max_parallel_launches
        if parallel < EC2_MIN_PARALLEL_LAUNCHES:
            yield Violation(
                path,
                f"maxParallelLaunches is {parallel}; EC2 fast launch rejects fewer than {EC2_MIN_PARALLEL_LAUNCHES}",
            )
        elif parallel > cap:
            default = " (EC2's default per-Region quota)" if cap == DEFAULT_PARALLEL_LAUNCH_QUOTA else ""
            yield Violation(
                path,
                f"maxParallelLaunches is {parallel}, above the max-parallel-launches policy cap of {cap}{default}; "
                "lower it, or raise the option if your quota allows",
            )

    def _template(self, entry, pointer, ctx):
        template = entry.get("launchTemplate")
        if template is None:
            yield Violation(
                pointer,
                "fast launch is enabled without a launchTemplate: EC2 launches in the Region's default VPC "
                "and fails without one; name a template to choose the network",
                severity=None if self.options.require_launch_template else Severity.INFO,
            )
            return
        if not isinstance(template, dict):
            return
        halves = [template.get(k) for k in ("launchTemplateId", "launchTemplateName") if k in template]
        if len(halves) < 2:
            return
        path = join_pointer(pointer, "launchTemplate")
        if any(is_unresolved(h) for h in halves):
            # e.g. Terraform lookup(..., null): one half may be null when applied.
            ctx.cannot_verify(path, "launchTemplateId or launchTemplateName is not a literal (it may be null)")
        elif all(isinstance(h, str) for h in halves):
            yield Violation(path, "launchTemplate names both launchTemplateId and launchTemplateName; keep one")
