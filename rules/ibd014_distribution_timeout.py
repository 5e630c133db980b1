"""IBD014 distribution-timeout."""

from __future__ import annotations

from dataclasses import dataclass

from auditor import apimodel
from auditor.model import Severity
from auditor.rule import Rule, Violation, option

API_MIN = apimodel.shape("DistributionTimeoutMinutes")["min"]
API_MAX = apimodel.shape("DistributionTimeoutMinutes")["max"]


@dataclass(frozen=True)
class Options:
    min_minutes: int = option(API_MIN, "Smallest timeoutMinutes allowed.")
    max_minutes: int = option(API_MAX, "Largest timeoutMinutes allowed.")


class DistributionTimeout(Rule):
    """The distribution timeout must be within the API's and your bounds.

    Why:
      `timeoutMinutes` bounds how long Image Builder waits for copies and exports. The
      API accepts 30 to 720; outside that the update fails. A short timeout fails
      large multi-region copies; a long one hides a stuck distribution for hours.

    Example:
      "timeoutMinutes": 10

    Fix:
      Set `timeoutMinutes` within `min-minutes`..`max-minutes` (default 30..720).
    """

    id = "IBD014"
    slug = "distribution-timeout"
    severity = Severity.LOW
    summary = "Distribution timeout must be within 30..720 minutes and configured bounds"
    tags = ("reliability",)
    Options = Options

    def check(self, config, ctx):
        timeout = config.get("timeoutMinutes")
        if not isinstance(timeout, int) or isinstance(timeout, bool):
            return
        low = max(API_MIN, self.options.min_minutes)
        high = min(API_MAX, self.options.max_minutes)
        if not low <= timeout <= high:
            yield Violation("/timeoutMinutes", f"timeoutMinutes is {timeout}; allowed {low}..{high}")
