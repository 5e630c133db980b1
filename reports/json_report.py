"""JSON report: the stable machine contract (schema version 1)."""

from __future__ import annotations

import json
from typing import TextIO

from auditor.model import AuditResult
from auditor.reporting import result_dict


class JSONReporter:
    name = "json"
    description = "stable JSON document (schema version 1) for other tools"

    def write(self, result: AuditResult, stream: TextIO, *, color: bool = False) -> None:
        json.dump(result_dict(result), stream, indent=2, ensure_ascii=False)
        stream.write("\n")
