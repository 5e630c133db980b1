"""Suppressions written by the authors of a configuration, and their governance.

Three forms, each naming one or more rule ids and an optional reason:

- the resource tag ``ib-audit:ignore`` = ``IBD001:reason,IBD009`` (any source: the tag
  lives in the canonical ``tags``);
- CloudFormation ``Metadata: {ib-audit: {ignore: [{id: IBD001, reason: ..., until: ...}]}}``;
- a Terraform comment ``# ib-audit:ignore IBD001,IBD008 reason`` (ids separated by commas
  or spaces) on its own line inside or directly above the resource, or trailing a line,
  where it covers only the findings on that line (as ruff's ``# noqa``).

A reason may carry ``until=YYYY-MM-DD`` (CloudFormation: an ``until`` key): after that
day the suppression no longer applies and says so. Like ruff's ``noqa`` handling, a
malformed entry, an unknown rule id, an expired entry, a missing reason when
``require-reason`` is on and (with ``--report-unused-suppressions``) an entry that
suppressed nothing are warnings naming the file and line; warnings never change the
exit code. An entry that is malformed, expired or lacks a required reason does not
suppress: the finding stays active, so a broken suppression can never hide one.

Sources parse their own form with the functions here and attach the entries to the
target; the engine validates and applies them through :class:`InlineSuppressions`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from auditor.model import Finding, InlineSuppression, Location, Notice, Span, Suppression, Target, join_pointer
from auditor.patterns import LazyPattern

TAG = "ib-audit:ignore"
DIRECTIVE = "ib-audit:ignore"
METADATA_KEY = "ib-audit"
METADATA_ENTRY_KEYS = ("id", "reason", "until")

# A rule id as written in a comment: letters then digits (IBD001, ACME042), as ruff's
# "noqa" codes. The first word that is not one starts the reason.
_ID = r"(?:[A-Za-z]+[0-9]+|ALL)"
_IDS_RE = LazyPattern(rf"^[:=]?\s*({_ID}(?:\s*,\s*{_ID}|\s+{_ID})*)\s*,?(.*)$")
_ID_TOKEN_RE = LazyPattern(r"^[A-Za-z][A-Za-z0-9_-]*$")
_UNTIL_RE = LazyPattern(r"(?:^|\s)until=(\S*)")
_DATE_RE = LazyPattern(r"^\d{4}-\d{2}-\d{2}$")
_DIRECTIVE_RE = re.escape(DIRECTIVE) + r"(?![\w-])(.*)$"
_COMMENT_RE = LazyPattern(r"(#|//)\s*" + _DIRECTIVE_RE)
_COMMENT_TEXT_RE = LazyPattern(r"\s*" + _DIRECTIVE_RE)
_HEREDOC_RE = LazyPattern(r"<<-?\s*([A-Za-z_][A-Za-z0-9_]*)\s*$")

DEFAULT_REASONS = {
    "tag": f"tag {TAG}",
    "metadata": f"CloudFormation Metadata {METADATA_KEY}",
    "comment": f"Terraform comment {DIRECTIVE}",
}


def split_until(text: str) -> tuple[str, str | None, str | None]:
    """``(reason without the until= token, until date, problem)`` from a reason text."""
    match = _UNTIL_RE.search(text)
    if match is None:
        return text.strip(), None, None
    reason = (text[: match.start()] + " " + text[match.end() :]).strip()
    value = match.group(1)
    return reason, value, date_problem(value)


def date_problem(value: Any) -> str | None:
    """Why ``value`` is not a ``YYYY-MM-DD`` date, or None when it is one."""
    if not isinstance(value, str) or not _DATE_RE.match(value):
        return f"until={value!s} is not a date (expected YYYY-MM-DD)"
    try:
        date.fromisoformat(value)
    except ValueError:
        return f"until={value} is not a valid date"
    return None


# -- the tag -------------------------------------------------------------------------------
def tag_suppressions(target: Target) -> tuple[InlineSuppression, ...]:
    """Entries of the ``ib-audit:ignore`` tag: ``ID[:reason][,ID[:reason]...]``."""
    tags = (target.config or {}).get("tags")
    if not isinstance(tags, Mapping) or TAG not in tags:
        return ()
    pointer = join_pointer("/tags", TAG)
    value = tags[TAG]
    if not isinstance(value, str):
        return (InlineSuppression("", "tag", "", pointer=pointer, problem=f"the value is not a literal ({value})"),)
    out = []
    for item in value.split(","):
        if not item.strip():
            continue
        rule_id, _, rest = item.strip().partition(":")
        reason, until, problem = split_until(rest)
        rule_id = rule_id.strip()
        if not _ID_TOKEN_RE.match(rule_id):
            problem = f"{rule_id!r} is not a rule id (expected ID or ID:reason, comma-separated)"
        out.append(InlineSuppression(rule_id.upper(), "tag", reason, until, pointer=pointer, problem=problem))
    return tuple(out)


# -- CloudFormation Metadata ------------------------------------------------------------------
def metadata_suppressions(metadata: Any) -> tuple[InlineSuppression, ...]:
    """Entries of a CloudFormation resource's ``Metadata: {ib-audit: {ignore: [...]}}``.

    Each entry is ``{id, reason, until}`` (only ``id`` required) or a bare id string.
    Pointers are relative to the resource (``/Metadata/ib-audit/ignore/0``), which the
    target's source map resolves to the entry's line.
    """
    if not isinstance(metadata, Mapping) or METADATA_KEY not in metadata:
        return ()
    section = metadata[METADATA_KEY]
    base = join_pointer("/Metadata", METADATA_KEY)

    def bad(pointer: str, problem: str) -> InlineSuppression:
        return InlineSuppression("", "inline", "", pointer=pointer, problem=problem)

    if not isinstance(section, Mapping):
        return (bad(base, "expected a mapping with an 'ignore' list"),)
    out = [
        bad(join_pointer(base, key), f"unknown key {key!r} (expected 'ignore')") for key in section if key != "ignore"
    ]
    entries = section.get("ignore")
    if not isinstance(entries, list):
        out.append(bad(join_pointer(base, "ignore"), "'ignore' must be a list of {id, reason} entries"))
        return tuple(out)
    for index, entry in enumerate(entries):
        pointer = join_pointer(base, "ignore", index)
        if isinstance(entry, str):
            entry = {"id": entry}
        if not isinstance(entry, Mapping):
            out.append(bad(pointer, "an entry must be a rule id or {id, reason}"))
            continue
        unknown = [k for k in entry if k not in METADATA_ENTRY_KEYS]
        if unknown:
            problem = f"unknown key {unknown[0]!r} (expected id, reason, until)"
            out.append(bad(join_pointer(pointer, unknown[0]), problem))
            continue
        rule_id, reason, until = entry.get("id"), entry.get("reason", ""), entry.get("until")
        if not isinstance(rule_id, str) or not _ID_TOKEN_RE.match(rule_id.strip()):
            out.append(bad(pointer, f"'id' must be a rule id, got {rule_id!r}"))
            continue
        if not isinstance(reason, str):
            out.append(bad(join_pointer(pointer, "reason"), "'reason' must be a string"))
            continue
        problem = None if until is None else date_problem(until)
        out.append(
            InlineSuppression(
                rule_id.strip().upper(),
                "inline",
                reason.strip(),
                None if until is None else str(until),
                pointer=pointer,
                problem=problem,
            )
        )
    return tuple(out)


# -- Terraform comments ---------------------------------------------------------------------------
def _comment(line: str) -> tuple[int, str, bool] | None:
    """``(column, text after the directive, trailing)`` of an ib-audit comment on a line.

    A ``#`` or ``//`` inside a string is not a comment: the text before it must hold an
    even number of unescaped double quotes.
    """
    for match in _COMMENT_RE.finditer(line):
        before = line[: match.start()]
        if len(re.findall(r'(?<!\\)"', before)) % 2 == 0:
            return match.start() + 1, match.group(2), bool(before.strip())
    return None


def comment_text_entries(text: str, line: int | None, column: int | None) -> list[InlineSuppression]:
    """The entries of a comment given as text without its marker (Terraform JSON's
    ``"//"`` value): like a ``#`` comment, it must start with the directive."""
    match = _COMMENT_TEXT_RE.match(text)
    return parse_comment(match.group(1), line, column, False) if match else []  # type: ignore[arg-type]


def parse_comment(text: str, line: int, column: int, trailing: bool) -> list[InlineSuppression]:
    """The entries of one ``ib-audit:ignore`` comment (the text after the directive)."""
    match = _IDS_RE.match(text.strip())
    where = {"line": line, "column": column, "line_only": trailing}
    if match is None:
        got = text.strip().split()[0] if text.strip() else "nothing"
        problem = f"expected rule ids after {DIRECTIVE}, got {got!r}"
        return [InlineSuppression("", "inline", "", problem=problem, **where)]
    reason, until, problem = split_until(match.group(2))
    ids = [i for i in re.split(r"[\s,]+", match.group(1)) if i]
    return [InlineSuppression(i.upper(), "inline", reason, until, problem=problem, **where) for i in ids]


def comment_suppressions(lines: Sequence[str], start_line: int, end_line: int) -> tuple[InlineSuppression, ...]:
    """Entries of ``ib-audit:ignore`` comments for a block spanning ``start_line..end_line``.

    Comments on their own line inside the block, or in the run of comment lines directly
    above it, cover the whole resource; a comment trailing code covers that line only.
    Lines inside heredocs are text, not comments.
    """
    numbers = []
    above = start_line - 1
    while above >= 1 and lines[above - 1].lstrip().startswith(("#", "//")):
        numbers.append(above)
        above -= 1
    numbers.reverse()
    heredoc: str | None = None
    out: list[InlineSuppression] = []
    for number in [*numbers, *range(start_line, min(end_line, len(lines)) + 1)]:
        text = lines[number - 1]
        if heredoc is not None:
            if text.strip() == heredoc:
                heredoc = None
            continue
        found = _comment(text)
        if found is not None:
            column, rest, trailing = found
            out.extend(parse_comment(rest, number, column, trailing))
        opener = _HEREDOC_RE.search(text)
        if opener is not None and (found is None or opener.start() < column - 1):
            heredoc = opener.group(1)
    return tuple(out)


# -- applying them ----------------------------------------------------------------------------
def _form(entry: InlineSuppression) -> str:
    if entry.kind == "tag":
        return "tag"
    return "metadata" if entry.pointer is not None else "comment"


def _form_name(entry: InlineSuppression) -> str:
    return {"tag": f"tag {TAG}", "metadata": f"Metadata {METADATA_KEY}", "comment": f"comment {DIRECTIVE}"}[
        _form(entry)
    ]


def entry_location(target: Target, entry: InlineSuppression) -> Location:
    """Where a suppression is written: its line in the target's file, or the ARN."""
    if entry.pointer is not None:
        return target.locate(entry.pointer)
    if entry.line is not None and target.origin.file:
        column = entry.column or 1
        return Location(file=target.origin.file, span=Span(entry.line, column, entry.line, column))
    return target.locate("")


class InlineSuppressions:
    """The authors' suppressions of one target: validated once, applied to each finding.

    :param rule_ids: every rule id known to this run (enabled or not).
    :param enabled: the ids of the rules that ran.
    """

    def __init__(
        self,
        target: Target,
        entries: Iterable[InlineSuppression],
        *,
        rule_ids: set[str],
        enabled: set[str],
        require_reason: bool = False,
        today: date | None = None,
    ) -> None:
        self.target = target
        self.enabled = enabled
        self.warnings: list[Notice] = []
        self._active: list[tuple[InlineSuppression, Location]] = []
        self._used: set[int] = set()
        today = today or date.today()
        for entry in entries:
            where = entry_location(target, entry)
            form = _form_name(entry)
            if entry.problem is not None:
                self._warn("malformed-suppression", f"malformed {form}: {entry.problem}; it does not apply", where)
            elif entry.rule_id != "ALL" and entry.rule_id not in rule_ids:
                self._warn("unknown-rule", f"unknown rule id {entry.rule_id!r} in {form}", where)
            elif entry.until is not None and date.fromisoformat(entry.until) < today:
                self._warn(
                    "expired-suppression",
                    f"suppression of {entry.rule_id} expired on {entry.until}; its findings are active again",
                    where,
                )
            elif require_reason and not entry.reason:
                self._warn(
                    "missing-reason",
                    f"suppression of {entry.rule_id} has no reason (require-reason is on); it does not apply",
                    where,
                )
            else:
                self._active.append((entry, where))

    def _warn(self, kind: str, message: str, where: Location) -> None:
        self.warnings.append(Notice(kind, message, where))

    def match(self, finding: Finding) -> Suppression | None:
        """The first entry that covers the finding, marked used; None if none does."""
        for index, (entry, where) in enumerate(self._active):
            if entry.rule_id not in (finding.rule_id, "ALL"):
                continue
            if entry.line_only:
                span = finding.location.span
                if span is None or span.start_line != entry.line or finding.location.file != where.file:
                    continue
            self._used.add(index)
            return Suppression(entry.kind, entry.reason or DEFAULT_REASONS[_form(entry)])
        return None

    def unused(self) -> list[Notice]:
        """A warning for every valid entry that suppressed nothing (RUF100's idea)."""
        out = []
        for index, (entry, where) in enumerate(self._active):
            if index in self._used:
                continue
            off = entry.rule_id != "ALL" and entry.rule_id not in self.enabled
            why = f" ({entry.rule_id} is not enabled)" if off else ""
            out.append(
                Notice(
                    "unused-suppression",
                    f"unused suppression of {entry.rule_id} in {_form_name(entry)}: nothing to suppress{why}",
                    where,
                )
            )
        return out


def inline_entries(target: Target) -> tuple[InlineSuppression, ...]:
    """Every suppression the target's authors wrote: the source's own and the tag."""
    return (*target.suppressions, *tag_suppressions(target))
