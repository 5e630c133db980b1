"""Configuration: ``--config FILE``, ``.ib-audit.toml``, or ``[tool.ib-audit]`` in pyproject.

The file is searched from the scanned paths' common directory upwards. A bad key or
value is an error naming the key and the file; every error is collected, and the
command line stops before scanning (exit 2) rather than run with half a configuration.

Rule selection follows ruff: the config file and the command line are two layers, each
with ``select``, ``extend-select`` and ``ignore`` (+ ``extend-ignore``). A layer's
``select`` replaces what the layers before it chose; otherwise the layer adds and
removes rules on top. Within a layer the more specific selector wins (``IBD0`` beats
``ALL``, ``IBD002`` beats ``IBD0``), and ``ignore`` beats ``select`` at equal specificity.

Blank entries in lists (``ignore = [""]`` would otherwise match every rule) and bounds
that leave nothing between them (a ``min-X`` above its ``max-X``, a maximum below the
rule's own floor) are errors too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.model import InputError, Notice, Severity
from auditor.rule import Rule, coerce_option

TOP_LEVEL_KEYS = (
    "fail-on",
    "select",
    "ignore",
    "extend-select",
    "extend-ignore",
    "exclude",
    "extend-exclude",
    "force-exclude",
    "per-path-ignores",
    "require-reason",
    "rules",
    "max-file-size-mb",
    "owner-account",
    "owner-region",
)
RULE_KEYS = ("severity", "enabled")
DEFAULT_MAX_FILE_SIZE_MB = 20
# Directories a walk never enters unless ``exclude`` is set (``extend-exclude`` adds to it).
DEFAULT_EXCLUDE = (".git", ".hg", ".svn", "node_modules", ".terraform", "__pycache__", ".venv")


@dataclass
class RuleSelection:
    """One layer of rule selection (the config file, or the command line)."""

    select: tuple[str, ...] | None = None  # None: this layer does not reset the selection
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()  # ignore and extend-ignore together


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
    extend_select: tuple[str, ...] = ()
    extend_ignore: tuple[str, ...] = ()
    # The command line's layer, applied after the file's (see the module docstring).
    cli_selection: RuleSelection = field(default_factory=RuleSelection)
    rules: dict[str, RuleSetting] = field(default_factory=dict)  # by rule id
    max_file_size_mb: int = DEFAULT_MAX_FILE_SIZE_MB
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    force_exclude: bool = False  # also exclude files named on the command line (pre-commit)
    per_path_ignores: dict[str, tuple[str, ...]] = field(default_factory=dict)  # glob -> rule selectors
    require_reason: bool = False
    inline_suppressions: bool = True
    report_unused_suppressions: bool = False
    base_dir: Path | None = None  # what path globs are relative to: the config file's directory
    # The account and region that own the scanned configurations, for files that do
    # not say (no ARN): "own account" / "own region" checks use them.
    owner_account: str | None = None
    owner_region: str | None = None
    config_file: str | None = None
    errors: list[InputError] = field(default_factory=list)
    warnings: list[Notice] = field(default_factory=list)  # reported, never fail the run
    parameter_files: tuple[str, ...] = ()  # --parameters: CloudFormation parameter values
    var_files: tuple[str, ...] = ()  # --var-file: Terraform variable values
    scan_paths: tuple[str, ...] = ()  # the paths scanned: where Terraform module calls are looked for

    def selections(self) -> list[RuleSelection]:
        """The layers of rule selection, the file's first."""
        file_layer = RuleSelection(
            select=self.select or None, extend_select=self.extend_select, ignore=self.ignore + self.extend_ignore
        )
        return [file_layer, self.cli_selection]

    def selected(self, rules: Sequence[type[Rule]]) -> set[str]:
        """The ids of the rules the select/ignore layers leave on (before per-rule ``enabled``)."""
        on = {r.id for r in rules}  # no select anywhere: every rule
        for layer in self.selections():
            updates: dict[str, bool] = {}
            choices = [(s, True) for s in (*(layer.select or ()), *layer.extend_select)]
            choices += [(s, False) for s in layer.ignore]
            # Least specific first, so the most specific selector has the last word;
            # at equal specificity ignore (False) after select (True).
            for selector, enable in sorted(choices, key=lambda c: (specificity(c[0]), not c[1])):
                for rule in rules:
                    if matches(selector, rule):
                        updates[rule.id] = enable
            if layer.select is not None:
                on = {rule_id for rule_id, enable in updates.items() if enable}
            else:
                on |= {rule_id for rule_id, enable in updates.items() if enable}
                on -= {rule_id for rule_id, enable in updates.items() if not enable}
        return on


def parse_fail_on(text: str) -> Severity | None:
    if text.strip().lower() == "never":
        return None
    return Severity.parse(text)


def discovery_start(paths: Sequence[str]) -> Path:
    """Where config discovery starts: the common directory of the scanned paths (else ``.``)."""
    dirs = []
    for raw in paths:
        path = Path(os.path.abspath(raw))
        dirs.append(str(path if path.is_dir() else path.parent))
    if not dirs:
        return Path.cwd()
    return Path(os.path.commonpath(dirs))


def find_config_file(start: Path) -> tuple[Path, bool] | None:
    """Search upwards for ``.ib-audit.toml``, or a pyproject.toml with ``[tool.ib-audit]``."""
    for directory in (start, *start.parents):
        candidate = directory / ".ib-audit.toml"
        if candidate.is_file():
            return candidate, False
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            try:
                text = pyproject.read_text(encoding="utf-8")
                if "ib-audit" not in text:
                    continue  # cannot have the table: no need to parse it (tomllib costs start-up time)
                import tomllib

                data = tomllib.loads(text)
            except (OSError, UnicodeDecodeError, ValueError):  # tomllib.TOMLDecodeError is a ValueError
                continue
            if "ib-audit" in data.get("tool", {}):
                return pyproject, True
    return None


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    import difflib  # only for a misspelt key

    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_settings(
    path: Path | None, rules: Sequence[type[Rule]], *, explicit: bool = False, start: Path | None = None
) -> Settings:
    """Read a config file into Settings. ``path=None`` searches from ``start`` (default: ``.``) upwards."""
    settings = Settings()
    in_pyproject = False
    if path is None:
        found = find_config_file(start or Path.cwd())
        if found is None:
            settings.base_dir = start or Path.cwd()
            return settings
        path, in_pyproject = found
    else:
        in_pyproject = path.name == "pyproject.toml"
    display = str(path)
    settings.config_file = display
    settings.base_dir = Path(os.path.abspath(path)).parent

    def error(message: str) -> None:
        settings.errors.append(InputError(display, message))

    import tomllib

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
        elif key in ("select", "ignore", "extend-select", "extend-ignore"):
            selectors = _selectors(value, name, rules, error)
            if selectors is not None:
                setattr(settings, key.replace("-", "_"), selectors)
                settings.warnings += retired_notices(selectors, rules, settings.config_file, name)
        elif key in ("exclude", "extend-exclude"):
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                error(f"{name}: expected a list of path globs, got {value!r}")
                continue
            setattr(settings, key.replace("-", "_"), tuple(value))
        elif key in ("force-exclude", "require-reason"):
            if not isinstance(value, bool):
                error(f"{name}: expected true or false, got {value!r}")
                continue
            setattr(settings, key.replace("-", "_"), value)
        elif key == "per-path-ignores":
            if not isinstance(value, dict):
                error(f"{name}: expected a table of path glob = [rule ids], got {value!r}")
                continue
            for glob, listed in value.items():
                if not glob.strip():
                    error(f"{name}: an empty path glob")
                    continue
                selectors = _selectors(listed, f'{name}."{glob}"', rules, error)
                if selectors is not None:
                    settings.per_path_ignores[glob] = selectors
        elif key == "owner-account":
            if not isinstance(value, str) or not (len(value) == 12 and value.isascii() and value.isdigit()):
                error(f"{name}: expected a 12-digit AWS account id, got {value!r}")
                continue
            settings.owner_account = value
        elif key == "owner-region":
            from auditor import regions

            problem = regions.problem(value) if isinstance(value, str) else f"expected a string, got {value!r}"
            if problem:
                error(f"{name}: {problem}")
                continue
            settings.owner_region = value
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
                if rule.retired:
                    settings.warnings += retired_notices([rule.id], rules, settings.config_file, rule_name)
                    continue
                if not isinstance(table, dict):
                    error(f"{rule_name}: expected a table, got {table!r}")
                    continue
                _apply_rule_table(settings.rules.setdefault(rule.id, RuleSetting()), rule, table, rule_name, error)


def _selectors(value: Any, name: str, rules: Sequence[type[Rule]], error) -> tuple[str, ...] | None:
    """A list of rule selectors from the file; each unknown one is an error naming it."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        error(f"{name}: expected a list of rule ids or prefixes, got {value!r}")
        return None
    value = _without_blanks(value, name, error)
    bad = unknown_selectors(value, rules)
    for selector in bad:
        error(f"{name}: unknown rule id or prefix {selector!r}")
    return tuple(v for v in value if v not in bad)


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
                coerced = coerce_option(fields[key], value)
            except ValueError as exc:
                error(f"{key_name}: {exc}")
                continue
            if isinstance(coerced, tuple):
                coerced = tuple(_without_blanks(list(coerced), key_name, error))
            setting.options[key] = coerced
        else:
            choices = [*RULE_KEYS, *fields]
            error(f"unknown key {key_name!r} for {rule.id}{_did_you_mean(key, choices)}")
    _check_bounds(setting, fields, name, error)


def _without_blanks(values: list[str], name: str, error) -> list[str]:
    """The non-blank entries; each blank one is an error (``ignore = [""]`` matched every rule)."""
    for index, value in enumerate(values):
        if not value.strip():
            error(f"{name}: entry {index} is empty")
    return [v for v in values if v.strip()]


def _check_bounds(setting: RuleSetting, fields: dict, name: str, error) -> None:
    """Configured bounds must leave room: min-X <= max-X, and no maximum below its floor."""
    value = {key: setting.options.get(key, f.default) for key, f in fields.items()}
    for key, f in fields.items():
        if f.minimum is not None and key in setting.options and value[key] < f.minimum:
            error(f"{name}.{key}: {value[key]} is below {f.minimum}, the least the rule allows; every value would fire")
            del setting.options[key]
        upper = "max-" + key[4:]
        if key.startswith("min-") and upper in fields and (key in setting.options or upper in setting.options):
            low, high = value[key], value[upper]
            if isinstance(low, int) and isinstance(high, int) and low > high:
                error(f"{name}: {key} ({low}) is above {upper} ({high}); every value would fire")
                setting.options.pop(key, None)
                setting.options.pop(upper, None)


def matches(selector: str, rule: type[Rule]) -> bool:
    """Whether a selector (``ALL``, an id prefix, an id or a slug) covers a rule."""
    if not selector.strip():
        return False  # "" is a prefix of every id: it must never select or ignore them all
    return selector.upper() == "ALL" or rule.id.startswith(selector.upper()) or selector == rule.slug


def specificity(selector: str) -> int:
    """``ALL`` < a short prefix < a longer prefix < an exact id or a slug."""
    if selector.upper() == "ALL":
        return 0
    if selector.upper()[:1].isalpha() and selector.upper().isalnum():
        return len(selector)
    return 1_000  # a slug names exactly one rule


def unknown_selectors(selectors: Sequence[str], rules: Sequence[type[Rule]]) -> list[str]:
    return [s for s in selectors if s.upper() != "ALL" and not any(matches(s, r) for r in rules)]


def retired_notices(
    selectors: Sequence[str], rules: Sequence[type[Rule]], where: str | None, name: str | None = None
) -> list[Notice]:
    """A warning per selector that names a retired rule exactly (a prefix is fine).

    :param where: the config file, or the command-line flag.
    :param name: the key in the config file (``ignore``, ``rules.IBD014``).
    """
    return [
        Notice("retired-rule", f"{name + ': ' if name else ''}{r.id} is retired: {r.retired}", input=where)
        for s in selectors
        for r in rules
        if r.retired and (s.upper() == r.id or s == r.slug)
    ]


def is_enabled(rule: type[Rule], settings: Settings, selected: set[str] | None = None) -> bool:
    """Whether a rule runs: the select/ignore layers, then its ``enabled`` setting.

    ``enabled = false`` always wins; ``enabled = true`` turns a rule on that ``select``
    left out, but not one that an ``ignore`` names.
    """
    setting = settings.rules.get(rule.id)
    explicit = setting.enabled if setting is not None else None
    if explicit is False:
        return False
    if selected is None:
        selected = settings.selected([rule])
    if rule.id in selected:
        return True
    if explicit is True:
        return not any(matches(s, rule) for layer in settings.selections() for s in layer.ignore)
    return False
