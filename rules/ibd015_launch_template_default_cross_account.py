"""IBD015 launch-template-default-cross-account."""

from __future__ import annotations

from auditor import apimodel
from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Source, Violation, model_doc

from ._walk import distributions, is_unresolved, items, whole_match

TEMPLATE_ID_RE = whole_match(apimodel.pattern("LaunchTemplateId"))


class LaunchTemplateDefaultCrossAccount(Rule):
    """Do not change another account's default launch template version.

    Why:
      Image Builder makes the launch template version it creates the default one
      unless `setDefaultVersion` is false, and when the member is left out it treats
      it as true (CloudFormation passes it through; the Terraform provider's `default`
      argument defaults to true). Every launch from that template in the target account
      then uses the new AMI immediately, without that account's own review or rollout:
      a change made on someone else's fleet. An entry without `accountId` applies to the
      owner's own account and is fine. "Own" is the configuration ARN's account,
      `!Ref AWS::AccountId` / `data.aws_caller_identity.<x>.account_id`, else the
      `owner-account` you declare in config; findings say when it was unknown. A
      `launchTemplateId` that does not match the API's pattern is rejected.

    Example:
      "launchTemplateConfigurations": [{"launchTemplateId": "lt-0123456789abcdef0",
                                        "accountId": "444455556666"}]

    Fix:
      Set `setDefaultVersion` to false for other accounts and let them promote the
      version; use a template id of the form lt- followed by 17 characters.
    """

    id = "IBD015"
    slug = "launch-template-default-cross-account"
    severity = Severity.MEDIUM
    summary = "Launch template updates must not set the default version in other accounts"
    tags = ("security", "change-control", "launch-templates")
    sources = (
        model_doc(
            "LaunchTemplateConfiguration.setDefaultVersion",
            "Specifies whether to make the new launch template version that Image Builder creates the default "
            "version of the launch template. If you don't set a value, Image Builder treats it as true.",
        ),
        model_doc("LaunchTemplateConfiguration.accountId", "The account ID that this configuration applies to."),
        Source(
            "Terraform AWS provider, aws_imagebuilder_distribution_configuration (launch_template_configuration)",
            "default - (Optional) Indicates whether to set the specified Amazon EC2 launch template as the default "
            "launch template. Defaults to true.",
        ),
        model_doc("LaunchTemplateId", "^lt-[a-z0-9-_]{17}$"),
    )

    def check(self, config, ctx):
        for dist_pointer, dist in distributions(config):
            for pointer, entry in items(dist, "launchTemplateConfigurations", dist_pointer):
                if not isinstance(entry, dict):
                    continue
                template = entry.get("launchTemplateId")
                if isinstance(template, str) and not TEMPLATE_ID_RE.fullmatch(template):
                    yield Violation(
                        join_pointer(pointer, "launchTemplateId"), f"launchTemplateId {template!r} is malformed"
                    )
                yield from _default_version(entry, pointer, ctx)


def _default_version(entry, pointer, ctx):
    account = entry.get("accountId")
    if account is None or ctx.is_own_account(account) is True:
        return  # the owner's own template
    setting = entry.get("setDefaultVersion")
    name = repr(ctx.spell("setDefaultVersion"))
    path = join_pointer(pointer, "setDefaultVersion")
    if is_unresolved(setting) or is_unresolved(account):
        ctx.cannot_verify(path, f"{name} or accountId is not a literal")
        return
    if setting is False:
        return
    how = "sets" if setting is True else f"leaves {name} out, which means true, so it sets"
    yield Violation(
        path if setting is True else pointer,
        f"{how} the default launch template version in account {account}; set {name} to false and let that "
        f"account promote it{ctx.owner_note()}",
    )
