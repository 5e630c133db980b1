"""Configuration: ``--config FILE``, ``.ib-audit.toml``, or ``[tool.ib-audit]`` in pyproject.

A bad key or value is an error naming the key and the file; the rest of the file still
applies and the scan still runs (the exit code becomes 2), so nothing else is lost.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.model import InputError, Severity
from auditor.rule import Rule, coerce_option

TOP_LEVEL_KEYS = ("fail-on", "select", "ignore", "rules", "max-file-size-mb")
RULE_KEYS = ("severity", "enabled")
DEFAULT_MAX_FILE_SIZE_MB = 20


@dataclass
class RuleSetting:
    severity: Severity | None = None
    enabled: bool | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Settings:
    """Everything that decides what runs and what fails, after merging file and flags."""

    fail_on: Severity | None = Severity.LOW  # None: never fail on findings
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    rules: dict[str, RuleSetting] = field(default_factory=dict)  # by rule id
    max_file_size_mb: int = DEFAULT_MAX_FILE_SIZE_MB
    config_file: str | None = None
    errors: list[InputError] = field(default_factory=list)


def parse_fail_on(text: str) -> Severity | None:
    if text.strip().lower() == "never":
        return None
    return Severity.parse(text)


def find_config_file(start: Path) -> tuple[Path, bool] | None:
    """Search upwards for ``.ib-audit.toml``, or a pyproject.toml with ``[tool.ib-audit]``."""
    for directory in (start, *start.parents):
        candidate = directory / ".ib-audit.toml"
        if candidate.is_file():
            return candidate, False
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            try:
                data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                continue
            if "ib-audit" in data.get("tool", {}):
                return pyproject, True
    return None


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_settings(path: Path | None, rules: Sequence[type[Rule]], *, explicit: bool = False) -> Settings:
    """Read a config file into Settings. ``path=None`` searches from the current directory."""
    settings = Settings()
    in_pyproject = False
    if path is None:
        found = find_config_file(Path.cwd())
        if found is None:
            return settings
        path, in_pyproject = found
    else:
        in_pyproject = path.name == "pyproject.toml"
    display = str(path)
    settings.config_file = display

    def error(message: str) -> None:
        settings.errors.append(InputError(display, message))

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        error("config file not found")
        return settings
    except (OSError, UnicodeDecodeError) as exc:
        error(f"cannot read config file: {exc}")
        return settings
    except tomllib.TOMLDecodeError as exc:
        error(f"invalid TOML: {exc}")
        return settings
    prefix = ""
    if in_pyproject:
        data = data.get("tool", {}).get("ib-audit", {})
        prefix = "tool.ib-audit."
    apply_table(settings, data, rules, prefix, error)
    return settings


def apply_table(settings: Settings, data: dict, rules: Sequence[type[Rule]], prefix: str, error) -> None:
    by_id = {r.id: r for r in rules}
    by_slug = {r.slug: r for r in rules}
    for key, value in data.items():
        name = prefix + key
        if key not in TOP_LEVEL_KEYS:
            error(f"unknown key {name!r}{_did_you_mean(key, TOP_LEVEL_KEYS)}")
        elif key == "fail-on":
            try:
                if not isinstance(value, str):
                    raise ValueError(f"expected a string, got {value!r}")
                settings.fail_on = parse_fail_on(value)
            except ValueError as exc:
                error(f"{name}: {exc}")
        elif key in ("select", "ignore"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                error(f"{name}: expected a list of rule ids or prefixes, got {value!r}")
                continue
            bad = unknown_selectors(value, rules)
            for selector in bad:
                error(f"{name}: unknown rule id or prefix {selector!r}")
            setattr(settings, key, tuple(v for v in value if v not in bad))
        elif key == "max-file-size-mb":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                error(f"{name}: expected a positive integer, got {value!r}")
                continue
            settings.max_file_size_mb = value
        elif key == "rules":
            if not isinstance(value, dict):
                error(f"{name}: expected a table, got {value!r}")
                continue
            for rule_key, table in value.items():
                rule = by_id.get(rule_key) or by_slug.get(rule_key)
                rule_name = f"{name}.{rule_key}"
                if rule is None:
                    hint = _did_you_mean(rule_key, [*by_id, *by_slug])
                    error(f"unknown rule {rule_key!r} in {rule_name!r}{hint}")
                    continue
                if not isinstance(table, dict):
                    error(f"{rule_name}: expected a table, got {table!r}")
                    continue
                _apply_rule_table(settings.rules.setdefault(rule.id, RuleSetting()), rule, table, rule_name, error)


def _apply_rule_table(setting: RuleSetting, rule: type[Rule], table: dict, name: str, error) -> None:
    fields = {f.name: f for f in rule.option_fields()}
    for key, value in table.items():
        key_name = f"{name}.{key}"
        if key == "severity":
            try:
                if not isinstance(value, str):
                    raise ValueError(f"expected a string, got {value!r}")
                setting.severity = Severity.parse(value)
            except ValueError as exc:
                error(f"{key_name}: {exc}")
        elif key == "enabled":
            if not isinstance(value, bool):
                error(f"{key_name}: expected true or false, got {value!r}")
            else:
                setting.enabled = value
        elif key in fields:
            try:
                setting.options[key] = coerce_option(fields[key], value)
            except ValueError as exc:
                error(f"{key_name}: {exc}")
        else:
            choices = [*RULE_KEYS, *fields]
            error(f"unknown key {key_name!r} for {rule.id}{_did_you_mean(key, choices)}")


def matches(selector: str, rule: type[Rule]) -> bool:
    return rule.id.startswith(selector.upper()) or selector == rule.slug


def unknown_selectors(selectors: Sequence[str], rules: Sequence[type[Rule]]) -> list[str]:
    return [s for s in selectors if s.upper() != "ALL" and not any(matches(s, r) for r in rules)]


def is_enabled(rule: type[Rule], settings: Settings) -> bool:
    setting = settings.rules.get(rule.id)
    explicit = setting.enabled if setting is not None else None
    if explicit is False:
        return False
    if any(matches(s, rule) for s in settings.ignore):
        return False
    if explicit is True:
        return True
    if not settings.select:
        return True
    return any(s.upper() == "ALL" or matches(s, rule) for s in settings.select)
