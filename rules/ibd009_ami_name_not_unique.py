"""IBD009 ami-name-not-unique."""

from __future__ import annotations

import re

from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Violation, model_doc

from ._walk import ami_configs, is_unresolved

BUILD_DATE_RE = re.compile(r"\{\{\s*imagebuilder:buildDate\s*\}\}")


class AmiNameNotUnique(Rule):
    """An explicit AMI name must contain `{{ imagebuilder:buildDate }}`.

    Why:
      The API says an explicit name must include the `{{ imagebuilder:buildDate }}`
      tag so that each build produces a uniquely named AMI: AMI names are unique per
      account and region, so a fixed name works for the first build and makes every
      later build fail at distribution, after the image was built and tested.

    Example:
      "amiDistributionConfiguration": {"name": "golden-linux"}

    Fix:
      Add the build date variable: "name": "golden-linux-{{ imagebuilder:buildDate }}",
      or leave `name` out and let Image Builder generate one.
    """

    id = "IBD009"
    slug = "ami-name-not-unique"
    severity = Severity.MEDIUM
    summary = "AMI name must include {{ imagebuilder:buildDate }} to be unique per build"
    tags = ("reliability", "naming")
    sources = (
        model_doc(
            "AmiDistributionConfiguration.name",
            "The name must include the {{ imagebuilder:buildDate }} dynamic tag so that each build produces a "
            "uniquely named AMI.",
        ),
    )

    def check(self, config, ctx):
        for pointer, ami, _dist in ami_configs(config):
            name = ami.get("name")
            path = join_pointer(pointer, "name")
            if is_unresolved(name):
                # A template expression may still carry the variable literally (!Sub).
                if not BUILD_DATE_RE.search(str(name)):
                    ctx.cannot_verify(path, "AMI name is not a literal")
            elif isinstance(name, str) and not BUILD_DATE_RE.search(name):
                yield Violation(
                    path, f"AMI name {name!r} is the same for every build; add {{{{ imagebuilder:buildDate }}}}"
                )
