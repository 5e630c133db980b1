"""IBD015 launch-template-default-cross-account."""

from __future__ import annotations

import re

from auditor import apimodel
from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Violation

from ._walk import distributions, is_unresolved, items

TEMPLATE_ID_RE = re.compile(apimodel.pattern("LaunchTemplateId") or ".*")


class LaunchTemplateDefaultCrossAccount(Rule):
    """Do not change another account's default launch template version.

    Why:
      `setDefaultVersion: true` makes every launch from that template in the target
      account use the new AMI immediately, without that account's own review or
      rollout. In another account that is a change made on someone else's fleet. A
      malformed `launchTemplateId` fails the distribution.

    Example:
      "launchTemplateConfigurations": [{"launchTemplateId": "lt-0123456789abcdef0",
                                        "accountId": "444455556666",
                                        "setDefaultVersion": true}]

    Fix:
      Set `setDefaultVersion` to false for other accounts and let them promote the
      version; use a template id of the form lt- followed by 17 characters.
    """

    id = "IBD015"
    slug = "launch-template-default-cross-account"
    severity = Severity.MEDIUM
    summary = "Launch template updates must not set the default version in other accounts"
    tags = ("security", "change-control", "launch-templates")

    def check(self, config, ctx):
        for dist_pointer, dist in distributions(config):
            for pointer, entry in items(dist, "launchTemplateConfigurations", dist_pointer):
                if not isinstance(entry, dict):
                    continue
                template = entry.get("launchTemplateId")
                if isinstance(template, str) and not TEMPLATE_ID_RE.match(template):
                    yield Violation(
                        join_pointer(pointer, "launchTemplateId"), f"launchTemplateId {template!r} is malformed"
                    )
                account = entry.get("accountId")
                if entry.get("setDefaultVersion") is not True or account is None or is_unresolved(account):
                    continue
                if account != ctx.account:
                    yield Violation(
                        join_pointer(pointer, "setDefaultVersion"),
                        f"sets the default launch template version in account {account}; let that account promote it",
                    )
