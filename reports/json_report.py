"""JSON report: the stable machine contract (schema version 1).

Written as ``json.dump(result_dict(result), indent=2, ensure_ascii=False)`` would write
it, byte for byte, but finding by finding (a report of 100,000 findings is never built
whole in memory) and with orjson's encoder: the standard library's C encoder does not
indent, and its pure-Python one was most of the time a large report took.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from auditor.model import AuditResult
from auditor.reporting import finding_dict, result_dict

# Below this many findings the standard library's encoder is quick enough, and a small
# scan does not pay for importing orjson (a few milliseconds of a one-file scan).
ORJSON_FROM = 200


def dumps(value: Any, fast: bool = True) -> str:
    """``value`` as ``json.dumps(value, indent=2, ensure_ascii=False)`` writes it.

    orjson refuses what the standard library writes (a lone surrogate from a merged
    report, an integer past 64 bits): those values take the standard library's way.
    """
    if fast:
        import orjson

        try:
            return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
        except TypeError:
            pass
    return json.dumps(value, indent=2, ensure_ascii=False)


class JSONReporter:
    name = "json"
    description = "stable JSON document (schema version 1) for other tools"
    needs_configs = False  # works from findings alone

    def write(self, result: AuditResult, stream: TextIO, *, color: bool = False) -> None:
        document = result_dict(result, findings=False)
        fast = len(result.findings) >= ORJSON_FROM
        separator = "{\n  "
        for key, value in document.items():
            stream.write(f"{separator}{json.dumps(key, ensure_ascii=False)}: ")
            separator = ",\n  "
            if key == "findings":
                _write_findings(result, stream, fast)
            else:
                stream.write(dumps(value, fast).replace("\n", "\n  "))
        stream.write("\n}\n")


def _write_findings(result: AuditResult, stream: TextIO, fast: bool) -> None:
    if not result.findings:
        stream.write("[]")
        return
    separator = "[\n    "
    for finding in result.findings:
        # JSON strings never hold a raw newline: every "\n" is the layout's own.
        stream.write(separator + dumps(finding_dict(finding), fast).replace("\n", "\n    "))
        separator = ",\n    "
    stream.write("\n  ]")
