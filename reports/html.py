"""HTML report: one self-contained page for a security reviewer, usable at estate scale.

Every finding, suppressed finding, configuration and unverified check travels as compact
data in one ``<script type="application/json">`` element: columns of numbers that index a
string table in which each distinct string appears once (sorted, and front-coded: a string
that starts like the one before it stores only where it differs). The page's script builds
only the rows on screen, and those a filter, sort, search or ``#f-<fingerprint>`` link
asks for, so 100,000 findings make a page of a few tens of MB that opens in about a second.

Without JavaScript the page still reads: the summary, findings per rule and severity, the
by-control view, the rules' help, and the first ``STATIC_FINDINGS`` findings (every
severity represented), configurations and checks that could not be verified are rendered
into the page itself, with a note saying how many are not listed and where they are.

Nothing from a configuration can become markup, script or a fetch: Jinja2 autoescapes the
server-rendered part; the script sets only text and attributes, never HTML; the data is
ASCII JSON with ``<``, ``>`` and ``&`` escaped (so neither ``</script>`` nor ``<!--`` can
occur, and U+2028/U+2029 arrive as ``\\u2028``/``\\u2029``); and a Content-Security-Policy
forbids every request.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, TextIO

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from auditor import __version__, controls
from auditor.model import AuditResult, Finding, Scenario, Severity, Target, Unresolved, value_at
from auditor.reporting import UnverifiedGroup, unverified_groups
from auditor.snippets import SNIPPET_MAX_LINES, clip, snippet_lines

# Rendered into the page for readers without JavaScript (the script shows everything).
STATIC_FINDINGS = 1000  # shared among severities so that each one is represented
STATIC_SUPPRESSED = 1000
STATIC_RESOURCES = 500
STATIC_UNVERIFIED = 1000  # could-not-verify groups (one per rule and reason)
FINDINGS_PER_CONTROL = 50  # listed under a control; the table's control filter shows all
UNVERIFIED_SHOWN = 50  # configurations listed under one could-not-verify cause; the JSON report has all
MISSING_NOTE = "member missing; showing the object that lacks it"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("auditor.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["tojson_safe"] = script_json
    return env


def script_json(value: Any) -> str:
    """JSON that is safe inside <script>: ASCII only, and no '<', '>' or '&' at all, so
    neither '</script>' nor '<!--' can appear and U+2028/U+2029 are escapes."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _reflow(text: str) -> str:
    """Docstring paragraphs as flowing text (blank lines stay paragraph breaks)."""
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n"))


def _snippet(finding: Finding, target: Target | None) -> dict[str, Any]:
    """The lines around a finding: carried with it (never read here: a merged report
    names files this machine must not open), else its value in the configuration; in
    each scenario of a template with conditions, where they differ."""
    if finding.snippet is not None:
        return {"kind": "source", "lines": snippet_lines(finding)}
    if target is not None and len(target.scenarios) > 1:
        return _snippet_per_scenario(finding.path, target.scenarios)
    if target is not None and target.config is not None:
        value, exact = value_at(target.config, finding.path)
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
        lines = text.splitlines()[:SNIPPET_MAX_LINES]
        return {
            "kind": "json",
            "note": None if exact else MISSING_NOTE,
            "lines": [{"number": None, "text": clip(line), "hit": exact} for line in lines],
        }
    return {"kind": "none", "lines": []}


def _snippet_per_scenario(path: str, scenarios: Sequence[Scenario]) -> dict[str, Any]:
    """The value at ``path`` as JSON when every scenario has the same one; else each
    distinct value under a line saying when it holds (the engine's wording), so that no
    one branch's value reads as the value."""
    shown = _by_branch(((n, _json_at(scenario.config, path)) for n, scenario in enumerate(scenarios)), scenarios)
    if len(shown) == 1:
        ((_, (text, exact)),) = shown
        lines = text.splitlines()[:SNIPPET_MAX_LINES]
        return {
            "kind": "json",
            "note": None if exact else MISSING_NOTE,
            "lines": [{"number": None, "text": clip(line), "hit": exact} for line in lines],
        }
    out = []
    for when, (text, exact) in shown:
        out.append(f"{when}:" if exact else f"{when} ({MISSING_NOTE}):")
        out.extend(text.splitlines()[:SNIPPET_MAX_LINES])
    # Every line is the finding's (the page's script marks them all alike).
    return {"kind": "json", "note": None, "lines": [{"number": None, "text": clip(t), "hit": True} for t in out]}


def _json_at(config: Any, path: str) -> tuple[str, bool]:
    value, exact = value_at(config, path)
    return json.dumps(value, indent=2, ensure_ascii=False, default=str), exact


def _by_branch(values: Iterable[tuple[int, Any]], scenarios: Sequence[Scenario]) -> list[tuple[str, Any]]:
    """``engine.by_branch``, each value's "when" in words ("when condition IsProd is true")."""
    from auditor.engine import by_branch  # only templates with conditions need it

    return [(when or EVERY_SCENARIO, value) for when, value in by_branch(values, scenarios)]


def _when(scenarios: Sequence[Scenario], where: Sequence[int]) -> str:
    """When the scenarios in ``where`` hold, as findings say it."""
    from auditor.engine import condition_qualifier  # only templates with conditions need it

    return condition_qualifier(scenarios, where) or EVERY_SCENARIO


EVERY_SCENARIO = "in every scenario"


def _shown(values: Any) -> list[str]:
    """Literal entries as they are, unresolved ones marked: never silently dropped."""
    if isinstance(values, Unresolved):
        return [f"{values} (unresolved)"]
    if not isinstance(values, list):
        return []
    return [f"{v} (unresolved)" if isinstance(v, Unresolved) else str(v) for v in values]


class Branch(NamedTuple):
    """One value of a cell that scenarios disagree on, and when it holds."""

    when: str  # "when condition IsProd is true": the engine's condition_qualifier
    values: tuple[str, ...]  # shown joined with ", " (a key is one value)
    public: bool = False  # launchable by everyone (the launch cell only)


class Share(NamedTuple):
    """One distribution as the by-resource view shows it.

    A template with conditions is shown across its scenarios: a distribution that only
    some have says when in ``region``; a cell they disagree on lists each value with when
    it holds in ``launch_when``, ``copies_when`` or ``key_when`` (then ``launch``,
    ``copies`` and ``key`` are empty, and ``public`` says whether any branch is).
    """

    region: str
    kind: str  # AMI | container | AMI (defaults)
    public: bool  # launchable by everyone
    launch: tuple[str, ...]  # who can launch the AMI, or where the container goes
    copies: tuple[str, ...]  # accounts the AMI is copied to
    key: str  # the KMS key that encrypts it
    facts: tuple[tuple[str, str], ...]  # (label, text) the account-context checks noted
    launch_when: tuple[Branch, ...] = ()
    copies_when: tuple[Branch, ...] = ()
    key_when: tuple[Branch, ...] = ()


def _sharing(target: Target, facts: Mapping[str, Mapping[str, str]]) -> list[Share]:
    """Per distribution: region, who can launch the AMI, which key encrypts it, and what
    the account-context checks found out (key state, who can use the key, block public
    access), keyed by the distribution's pointer. A template with conditions: across
    its scenarios (``_across``)."""
    if len(target.scenarios) > 1:
        return _across(target.scenarios, facts)
    return [share for _index, share in _distributions(target.config or {}, facts)]


def _distributions(config: Mapping[str, Any], facts: Mapping[str, Mapping[str, str]]) -> list[tuple[int, Share]]:
    """Each distribution of one configuration with its index in the list."""
    rows = []
    for index, dist in enumerate(config.get("distributions") or []):
        if not isinstance(dist, dict):
            continue
        noted = tuple(facts[f"/distributions/{index}"].items()) if facts and f"/distributions/{index}" in facts else ()
        region = str(dist.get("region", "?"))
        ami = dist.get("amiDistributionConfiguration")
        container = dist.get("containerDistributionConfiguration")
        if isinstance(ami, dict):
            perm = ami.get("launchPermission")
            if not isinstance(perm, dict):
                perm = {}
            groups = perm.get("userGroups")
            who = [
                *[f"group {g}" for g in _shown(groups)],
                *[f"account {a}" for a in _shown(perm.get("userIds"))],
                *[f"organization {o}" for o in _shown(perm.get("organizationArns"))],
                *[f"OU {o}" for o in _shown(perm.get("organizationalUnitArns"))],
            ]
            key = ami.get("kmsKeyId")
            if key is None:
                key_text = "none (account default)"
            else:
                key_text = f"{key} (unresolved)" if isinstance(key, Unresolved) else str(key)
            public = isinstance(groups, list) and any(isinstance(g, str) and g.lower() == "all" for g in groups)
            copies = tuple(_shown(ami.get("targetAccountIds")))
            share = Share(region, "AMI", public, tuple(who) or ("this account only",), copies, key_text, noted)
        elif isinstance(container, dict):
            repo = container.get("targetRepository")
            if not isinstance(repo, dict):
                repo = {}
            where = f"{repo.get('service', '?')} repository {repo.get('repositoryName', '?')}"
            share = Share(region, "container", False, (where,), (), "n/a", noted)
        else:
            share = Share(region, "AMI (defaults)", False, ("this account only",), (), "none (account default)", noted)
        rows.append((index, share))
    return rows


def _across(scenarios: Sequence[Scenario], facts: Mapping[str, Mapping[str, str]]) -> list[Share]:
    """The distributions of every scenario, one row each, as the engine merges findings:
    a distribution is known by its region (and kind), so one that moves in the list when
    another is left out under a condition is still one row. A row only some scenarios
    have says when in its region; a cell they disagree on lists each value with when it
    holds. Where every scenario agrees, the row reads as a single configuration's."""
    rows: dict[tuple[str, str, int], list[tuple[int, Share]]] = {}
    for number, (scenario, noted) in enumerate(zip(scenarios, _facts_by_scenario(scenarios, facts), strict=True)):
        seen: Counter = Counter()
        for _index, share in _distributions(scenario.config, noted):
            seen[share.region, share.kind] += 1
            rows.setdefault((share.region, share.kind, seen[share.region, share.kind]), []).append((number, share))
    out = []
    for (region, _kind, _occurrence), present in rows.items():
        where = [number for number, _share in present]
        first = present[0][1]
        if len(where) < len(scenarios):
            first = first._replace(region=f"{region} ({_when(scenarios, where)})")
        launch = _branches(scenarios, [(n, (s.public, s.launch)) for n, s in present])
        copies = _branches(scenarios, [(n, (False, s.copies)) for n, s in present])
        key = _branches(scenarios, [(n, (False, (s.key,))) for n, s in present])
        if launch:
            first = first._replace(public=any(b.public for b in launch), launch=(), launch_when=launch)
        if copies:
            first = first._replace(copies=(), copies_when=copies)
        if key:
            first = first._replace(key="", key_when=key)
        out.append(first)
    return out


def _facts_by_scenario(
    scenarios: Sequence[Scenario], facts: Mapping[str, Mapping[str, str]]
) -> list[Mapping[str, Mapping[str, str]]]:
    """Each scenario's facts by its own distributions' pointers: the engine notes a
    template's facts by one pointer per distribution (``distribution_pointers``), which in
    another scenario may be another distribution's place in the list."""
    if not facts:
        return [facts] * len(scenarios)
    from auditor.engine import distribution_pointers
    from auditor.identity import SemanticKeys

    keys = [SemanticKeys(scenario.config) for scenario in scenarios]
    where = distribution_pointers(scenarios, keys)
    out = []
    for number, scenario in enumerate(scenarios):
        dists = scenario.config.get("distributions")
        local = {}
        for position in range(len(dists) if isinstance(dists, list) else 0):
            pointer = f"/distributions/{position}"
            noted = facts.get(where.get(keys[number](pointer), ""))
            if noted:
                local[pointer] = noted
        out.append(local)
    return out


def _branches(scenarios: Sequence[Scenario], values: list[tuple[int, tuple[bool, tuple[str, ...]]]]) -> tuple:
    """Each distinct ``(public, values)`` with when it holds; () when they are all one."""
    branches = _by_branch(values, scenarios)
    if len(branches) == 1:
        return ()
    return tuple(Branch(when, shown, public) for when, (public, shown) in branches)


NOT_RECORDED = "not recorded in a merged report"


def _recorded_only(facts: Mapping[str, Mapping[str, str]]) -> list[Share]:
    """A merged report has no configurations, only what the JSON reports recorded: one row
    per distribution the account-context checks noted facts about, saying what is unknown
    rather than "none"."""
    rows = []
    unknown = (NOT_RECORDED,)
    for pointer in sorted(facts, key=lambda p: [int(t) if t.isdigit() else -1 for t in p.split("/")[1:]]):
        index = pointer.rsplit("/", 1)[-1]
        kind = f"distribution {index}" if index.isdigit() else pointer
        rows.append(Share("?", kind, False, unknown, unknown, NOT_RECORDED, tuple(facts[pointer].items())))
    return rows or [Share("?", "?", False, unknown, unknown, NOT_RECORDED, ())]


def _shares_of(target: Target, facts: Mapping[str, Mapping[str, str]]) -> list[Share]:
    """What the by-resource view shows of a target: its distributions; for a merged report
    (no configuration, no error) what the JSON reports recorded; nothing for an error."""
    if target.config is not None:
        return _sharing(target, facts)
    return _recorded_only(facts) if target.error is None else []


def _share_dict(share: Share) -> dict[str, Any]:
    """A Share as the server-rendered rows (and the model's readers) take it."""
    return {**share._asdict(), "facts": [{"label": k, "text": v} for k, v in share.facts]}


def _by_control(result: AuditResult, active: list[Finding], rows: Mapping[int, dict[str, Any]]) -> list[dict]:
    """Per framework, per control the rules that ran evidence: pass/fail counts and findings.

    A configuration fails a control when an unsuppressed finding of one of the control's
    rules is on it, and passes it otherwise (every rule runs on every audited configuration).
    ``active`` is in the page's order; ``rows`` renders the ones a control lists.
    """
    audited = {t.id for t in result.targets if t.status == "audited"}
    mapped: dict[tuple[str, str], list[str]] = {}
    for spec in result.rules:
        for control in controls.controls_for(spec.rule):
            mapped.setdefault((control.framework.key, control.id), []).append(spec.id)
    by_rule: dict[str, list[int]] = {}
    for index, f in enumerate(active):
        by_rule.setdefault(f.rule_id, []).append(index)
    suppressed = Counter(f.rule_id for f in result.findings if f.suppressed is not None)
    out = []
    for key, framework in controls.table().frameworks.items():
        controls_rows = []
        for cid in framework.controls:
            rules = mapped.get((key, cid))
            if not rules:
                continue
            found = sorted(i for r in rules for i in by_rule.get(r, ()))
            failing = {active[i].target for i in found} & audited
            controls_rows.append(
                {
                    "id": cid,
                    "title": framework.controls[cid],
                    "requirement": framework.requirement(cid),
                    "rules": rules,
                    "status": "fail" if failing else "pass",
                    "passed": len(audited) - len(failing),
                    "failed": len(failing),
                    "suppressed": sum(suppressed[r] for r in rules),
                    "findings": [rows[i] for i in found[:FINDINGS_PER_CONTROL]],
                    "total": len(found),
                    "more": max(0, len(found) - FINDINGS_PER_CONTROL),
                }
            )
        out.append(
            {
                "key": key,
                "title": framework.title,
                "url": framework.url,
                "note": framework.note,
                "controls": controls_rows,
            }
        )
    return out


def _shares(counts: Mapping[Any, int], budget: int) -> dict[Any, int]:
    """How many of each group fit in ``budget``, every group getting an equal share and
    what a small group leaves over going to the larger ones (water-filling)."""
    out, left = {}, budget
    groups = sorted(counts, key=lambda g: counts[g])
    for position, group in enumerate(groups):
        out[group] = min(counts[group], left // (len(groups) - position))
        left -= out[group]
    return out


class StringTable:
    """Every distinct string once, sorted and front-coded: ARNs, paths, messages and
    source lines that share a start with the string before them store only the rest.

    Usage: ``add`` every string, ``freeze``, then ``ids[text]`` and ``encoded()``.
    """

    def __init__(self) -> None:
        self._seen: dict[str, None] = {}
        self.ids: dict[str, int] = {}

    def add(self, text: str) -> str:
        self._seen[text] = None
        return text

    def add_all(self, texts: Iterable[str]) -> None:
        self._seen.update(dict.fromkeys(texts))

    def freeze(self, *runs: set[str]) -> list[str]:
        """The strings in id order: each run's sorted, then those of no run sorted. A
        string in two runs is in the first."""
        ordered: list[str] = []
        placed: set[str] = set()
        for run in (*runs, self._seen.keys()):
            ordered.extend(sorted(text for text in run if text not in placed))
            placed.update(run)
        self.ids = {text: index for index, text in enumerate(ordered)}
        return ordered

    def encoded(self, ordered: list[str]) -> list[int | str]:
        """``[string, shared, rest, ...]``: a number says how many UTF-16 code units (what
        JavaScript counts) the next string shares with the one before; the string after
        it is the rest."""
        out: list[int | str] = []
        previous = ""
        for text in ordered:
            shared = _common_prefix(previous, text)
            if shared >= 4:
                head = text[:shared]
                units = shared if head.isascii() else len(head.encode("utf-16-le", "surrogatepass")) // 2
                out.append(units)
                out.append(text[shared:])
            else:
                out.append(text)
            previous = text
        return out


def _common_prefix(a: str, b: str) -> int:
    """Length of the common start of two strings (binary search on slices: C speed)."""
    low, high = 0, min(len(a), len(b))
    if a[:high] == b[:high]:
        return high
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _location_parts(finding: Finding) -> tuple[str, int, int]:
    """What Location.display() shows, as (file or ARN, line, column); 0 where there is none."""
    loc = finding.location
    if loc.file:
        if loc.span:
            return loc.file, loc.span.start_line, loc.span.start_column
        return loc.file, 0, 0
    return loc.arn or "<unknown>", 0, 0


def _row(finding: Finding, target: Target | None, index: int) -> dict[str, Any]:
    """One finding as the server-rendered rows show it."""
    return {
        "index": index,
        "severity": finding.severity.label,
        "rank": int(finding.severity),
        "rule_id": finding.rule_id,
        "rule": finding.rule,
        "resource": target.name if target else finding.target,
        "target": finding.target,
        "location": finding.location.display(),
        "path": finding.path,
        "message": finding.message,
        # The anchor is the fingerprint: a link to a finding survives edits of the file.
        "anchor": f"f-{finding.fingerprint}",
        "suppressed": None
        if finding.suppressed is None
        else {"kind": finding.suppressed.kind, "reason": finding.suppressed.reason},
        "snippet": _snippet(finding, target),
    }


class _PageData:
    """The columns the page's script reads (see report.js for how it decodes them)."""

    def __init__(
        self, result: AuditResult, findings: list[Finding], targets: list[Target], groups: list[UnverifiedGroup]
    ) -> None:
        self.strings = StringTable()
        add = self.strings.add
        known = {t.id: t for t in result.targets}
        # Findings on a target the result does not list (a merged report) still name it.
        index = {t.id: i for i, t in enumerate(targets)}
        extra = []
        for f in findings:
            if f.target not in index:
                index[f.target] = len(targets) + len(extra)
                extra.append(f.target)
        self.target_index = index
        self.extra = extra
        rule_ids = sorted({f.rule_id for f in findings})
        slugs = {f.rule_id: f.rule for f in findings}
        self.rules = [{"id": r, "slug": slugs[r]} for r in rule_ids]
        rule_index = {r: i for i, r in enumerate(rule_ids)}

        sev, rule, tgt, line, col, sup = [], [], [], [], [], []
        where, path, message, prints, snippets = [], [], [], [], []
        suppressions: dict[tuple[str, str], int] = {}
        for f in findings:
            sev.append(int(f.severity))
            rule.append(rule_index[f.rule_id])
            tgt.append(index[f.target])
            file, number, column = _location_parts(f)
            where.append(add(file))
            line.append(number)
            col.append(column)
            path.append(add(f.path))
            message.append(add(f.message))
            prints.append(f.fingerprint)
            if f.suppressed is None:
                sup.append(0)
            else:
                pair = (add(f.suppressed.kind), add(f.suppressed.reason))
                sup.append(suppressions.setdefault(pair, len(suppressions) + 1))
            snippets.append(self._snippet(f, known.get(f.target)))
        self.findings = {"sev": sev, "rule": rule, "tgt": tgt, "line": line, "col": col, "sup": sup, "fp": prints}
        self._text_columns = {"file": where, "path": path, "msg": message}
        self._snippets = snippets
        self._suppressions = list(suppressions)

        self._targets = []
        self.sharing: dict[str, list[Share]] = {}  # by target id, for the rows rendered into the page
        shapes: dict[tuple, int] = {}
        add_all = self.strings.add_all
        for t in targets:
            shares = _shares_of(t, result.facts.get(t.id, {}))
            self.sharing[t.id] = shares
            sharing = []
            for s in shares:
                add_all((s.region, s.kind, s.key, *s.launch, *s.copies, *(x for fact in s.facts for x in fact)))
                shape: tuple = (
                    s.region,
                    s.kind,
                    int(s.public),
                    s.launch,
                    s.copies,
                    tuple(x for fact in s.facts for x in fact),
                )
                if s.launch_when or s.copies_when or s.key_when:  # scenarios disagree: a 7th member
                    for branch in (*s.launch_when, *s.copies_when, *s.key_when):
                        add_all((branch.when, *branch.values))
                    shape += ((s.launch_when, s.copies_when, s.key_when),)
                sharing.append((shapes.setdefault(shape, len(shapes)), s.key))
            self._targets.append(
                (add(t.name), add(t.origin.arn or t.id), add(t.origin.account or ""), t.error, sharing)
            )
            if t.error is not None:
                add(t.error)
        self.strings.add_all(extra)
        self._shapes = list(shapes)
        # Per group: rule, reason, configurations, entries not listed, then (target, path) pairs.
        self._unverified = []
        for g in groups:
            shown = g.entries[:UNVERIFIED_SHOWN]
            pairs = tuple(x for u in shown for x in (add(u.target), add(u.path)))
            self._unverified.append(
                (add(g.rule_id), add(g.reason), g.configurations, len(g.entries) - len(shown), pairs)
            )

    def _snippet(self, finding: Finding, target: Target | None) -> tuple | None:
        """``(first line, first hit, last hit, lines)``; first line 0 for a value shown as
        JSON (every line is the finding's), -1 for the object a missing member belongs in."""
        if finding.snippet is not None:
            snippet, span = finding.snippet, finding.location.span
            lines = tuple(map(self.strings.add, snippet.lines))
            if span is None:
                return (snippet.first_line, -1, -1, lines)
            first = max(span.start_line, snippet.first_line) - snippet.first_line
            last = min(span.end_line, snippet.first_line + len(lines) - 1) - snippet.first_line
            return (snippet.first_line, first, last, lines) if first <= last else (snippet.first_line, -1, -1, lines)
        shown = _snippet(finding, target)
        if shown["kind"] == "json":
            lines = tuple(self.strings.add(line["text"]) for line in shown["lines"])
            return (-1 if shown["note"] else 0, 0, 0, lines)
        return None

    def _shape(self, shape: tuple) -> list:
        """``[region, kind, public, launch, copies, facts]`` as string ids; a row whose
        scenarios disagree adds ``[launch, copies, key]`` branches, each a list of
        ``[when, public, value...]`` (an empty list where they agree)."""
        ids = self.strings.ids
        region, kind, public, launch, copies, facts, *conditional = shape
        out = [
            ids[region],
            ids[kind],
            public,
            [ids[x] for x in launch],
            [ids[x] for x in copies],
            [ids[x] for x in facts],
        ]
        if conditional:
            out.append(
                [
                    [[ids[b.when], int(b.public), *(ids[x] for x in b.values)] for b in branches]
                    for branches in conditional[0]
                ]
            )
        return out

    def encode(self) -> dict[str, Any]:
        # What the page's search reads is one run of the table, so that a search reads
        # that run, not every snippet's source lines too. Those lines, the most often
        # referred to, come first: small ids are short numbers in the page.
        searchable = {text for column in self._text_columns.values() for text in column}
        searchable.update(name for name, *_ in self._targets)
        searchable.update(self.extra)
        lines = {line for s in self._snippets if s is not None for line in s[3] if line not in searchable}
        ordered = self.strings.freeze(lines, searchable)
        ids = self.strings.ids
        first_searchable = len(lines)
        findings = dict(self.findings)
        for name, column in self._text_columns.items():
            findings[name] = [ids[s] for s in column]
        snip: list[Any] = []
        for s in self._snippets:
            if s is None:
                snip.append(0)
            elif s[0] > 0:
                snip.append([s[0], s[1], s[2], *(ids[x] for x in s[3])])
            else:
                snip.append([s[0], *(ids[x] for x in s[3])])
        findings["snip"] = snip
        names, labels, accounts, errors, sharing = [], [], [], [], []
        for name, label, account, error, shares in self._targets:
            names.append(ids[name])
            labels.append(ids[label])
            accounts.append(ids[account])
            errors.append(-1 if error is None else ids[error])
            sharing.append([x for shape, key in shares for x in (shape, ids[key])])
        return {
            "strings": self.strings.encoded(ordered),
            # Strings [from, to): what a search looks in.
            "searchable": [first_searchable, first_searchable + len(searchable)],
            "rules": self.rules,
            "findings": findings,
            "suppressions": [[ids[kind], ids[reason]] for kind, reason in self._suppressions],
            "targets": {
                "name": names + [ids[x] for x in self.extra],
                "label": labels,
                "account": accounts,
                "error": errors,
                "sharing": sharing,
            },
            "shapes": [self._shape(shape) for shape in self._shapes],
            "unverified": [
                [ids[rule], ids[reason], configurations, more, *(ids[x] for x in pairs)]
                for rule, reason, configurations, more, pairs in self._unverified
            ],
        }


def prepare(result: AuditResult, generated: datetime | None = None) -> dict[str, Any]:
    """Everything the template shows, as plain data: the page's script data, and the
    parts rendered into the page itself."""
    targets = {t.id: t for t in result.targets}
    rule_help = {}
    for spec in result.rules:
        sections = spec.rule.help_sections()
        rule_help[spec.id] = {
            "id": spec.id,
            "slug": spec.rule.slug,
            "summary": spec.rule.summary,
            "why": _reflow(sections.get("why", "")),
            "example": sections.get("example", ""),
            "fix": _reflow(sections.get("fix", "")),
            "uri": spec.rule.help_uri(),
        }
    # A reviewer reads the worst first, then in the JSON report's order (file, line, rule).
    findings = sorted(result.findings, key=lambda f: -f.severity)
    active = [i for i, f in enumerate(findings) if f.suppressed is None]
    suppressed = [i for i, f in enumerate(findings) if f.suppressed is not None]
    resources = sorted(
        result.targets, key=lambda t: (t.origin.account or "", t.origin.region or "", t.origin.file or "", t.name)
    )

    # Rendered into the page: a share of the findings of every severity, in page order.
    by_severity: dict[int, list[int]] = {}
    for i in active:
        by_severity.setdefault(int(findings[i].severity), []).append(i)
    shares = _shares({s: len(v) for s, v in by_severity.items()}, STATIC_FINDINGS)
    static_active = sorted(i for s, v in by_severity.items() for i in v[: shares[s]])
    active_findings = [findings[i] for i in active]
    wanted: set[int] = set(static_active) | set(suppressed[:STATIC_SUPPRESSED])
    control_rows: dict[int, dict[str, Any]] = {}

    def row(i: int) -> dict[str, Any]:
        if i not in control_rows:
            f = findings[i]
            control_rows[i] = _row(f, targets.get(f.target), i)
        return control_rows[i]

    frameworks = _by_control(result, active_findings, _LazyRows(active, row))
    for i in wanted:
        row(i)

    counts = result.counts()
    peak = max(counts.values()) or 1
    per_rule: dict[str, Counter] = {}
    slugs = {}
    for i in active:
        f = findings[i]
        per_rule.setdefault(f.rule_id, Counter())[f.severity.label] += 1
        slugs[f.rule_id] = f.rule
    if result.errors:
        verdict = "incomplete"
    elif result.failed:
        verdict = "fail"
    else:
        verdict = "pass"
    groups = unverified_groups(result.unverified)
    data = _PageData(result, findings, resources, groups)
    listed_resources = []
    for t in resources[:STATIC_RESOURCES]:
        listed_resources.append(
            {
                "id": t.id,
                "name": t.name,
                "origin": t.origin.as_dict(),
                "status": t.status,
                "error": t.error,
                "sharing": [_share_dict(s) for s in data.sharing[t.id]],
                "findings": {},
            }
        )
    resource_counts: dict[str, Counter] = {}
    for i in active:
        resource_counts.setdefault(findings[i].target, Counter())[findings[i].severity.label] += 1
    for r in listed_resources:
        r["findings"] = dict(resource_counts.get(r["id"], {}))
    severities = [s.label for s in sorted(Severity, reverse=True)]
    return {
        "version": __version__,
        "generated": (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        "verdict": verdict,
        "fail_on": result.fail_on.label if result.fail_on is not None else "never",
        "scanned": list(result.scanned),
        "config_file": result.config_file,
        "counts": counts,
        "bars": [{"severity": sev, "count": n, "width": round(300 * n / peak)} for sev, n in counts.items()],
        "audited": sum(1 for t in result.targets if t.status == "audited"),
        "inputs": len(result.targets),
        "errors": [{"input": e.input, "message": e.message} for e in result.errors],
        "total": len(active),
        "findings": [control_rows[i] for i in static_active],
        "suppressed_total": len(suppressed),
        "suppressed": [control_rows[i] for i in suppressed[:STATIC_SUPPRESSED]],
        "per_rule": [
            {"id": r, "slug": slugs[r], "counts": per_rule[r], "total": sum(per_rule[r].values())}
            for r in sorted(per_rule)
        ],
        "per_rule_severities": [s for s in severities if counts[s]],
        "rules": [rule_help[k] for k in sorted(rule_help)],
        "rule_ids": sorted(per_rule),
        "frameworks": frameworks,
        "control_ids": [
            c["requirement"] for fw in frameworks for c in fw["controls"] if c["failed"]
        ],  # in catalogue order, only those a finding evidences
        "severities": severities,
        "resources_total": len(resources),
        "resources": listed_resources,
        "has_context": bool(result.facts),
        "unverified_total": len(result.unverified),
        "unverified_groups": len(groups),
        # One cause in front of many configurations is one item (reporting.unverified_groups).
        "unverified": [
            {
                "rule_id": g.rule_id,
                "reason": g.reason,
                "configurations": g.configurations,
                "entries": [{"target": u.target, "path": u.path} for u in g.entries[:UNVERIFIED_SHOWN]],
                "more": max(0, len(g.entries) - UNVERIFIED_SHOWN),
            }
            for g in groups[:STATIC_UNVERIFIED]
        ],
        "script_data": {
            "counts": counts,
            "total": len(active),
            "verdict": verdict,
            "severities": {int(s): s.label for s in Severity},
            "has_context": bool(result.facts),
            # The control filter keeps the rows of a control's rules (no per-row attribute).
            "control_rules": {c["requirement"]: c["rules"] for fw in frameworks for c in fw["controls"]},
            **data.encode(),
        },
    }


class _LazyRows(Mapping[int, dict[str, Any]]):
    """Rows of active findings by their position among them, rendered when first asked for."""

    def __init__(self, active: list[int], render) -> None:
        self._active, self._render = active, render

    def __getitem__(self, position: int) -> dict[str, Any]:
        return self._render(self._active[position])

    def __len__(self) -> int:
        return len(self._active)

    def __iter__(self):
        return iter(range(len(self._active)))


def write(result: AuditResult, stream: TextIO) -> None:
    env = _environment()
    source = env.loader.get_source(env, "report.js")[0]
    if "</script" in source.lower() or "<!--" in source:  # ours; would end or confuse the element
        raise ValueError("report.js must not contain '</script' or '<!--'")
    script = Markup(source)
    stream.write(env.get_template("report.html.j2").render(report=prepare(result), script=script))
