"""IBD014 distribution-timeout: retired, its id reserved."""

from __future__ import annotations

from auditor.model import Severity
from auditor.rule import Rule


class DistributionTimeout(Rule):
    """Retired: `timeoutMinutes` is a member Image Builder does not use.

    The rule checked `timeoutMinutes` against 30..720 minutes. Image Builder does not
    use the member and does not accept it in create or update requests, so a bound on
    it protects nothing; IBD017 (api-constraints) reports it in a request instead. The
    id stays registered so that it is never reused; naming it in config is a warning.
    """

    id = "IBD014"
    slug = "distribution-timeout"
    severity = Severity.INFO
    summary = "Retired: timeoutMinutes is not used by Image Builder (see IBD017)"
    retired = "timeoutMinutes is a member Image Builder does not use; IBD017 (api-constraints) reports it in requests"

    def check(self, config, ctx):
        return iter(())
