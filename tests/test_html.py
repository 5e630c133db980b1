"""HTML report, opened in a real headless Chromium (Debian's package, driven by Playwright).

Skips where chromium is absent; CI sets IB_AUDIT_NO_SKIP=1, which turns that skip
into a failure.

The page builds only the rows near the viewport from its embedded data, so a test that
needs every row scrolls through the list as a reader does (``Page.scroll_through``) and
compares what it met, in order, with the JSON report written by the same scan.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from auditor.cli import main

from conftest import EXAMPLES, REPO, skip_or_fail

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAYLOADS = [
    "<script>window.__pwned = 1</script>",
    '"><img src=x onerror="window.__pwned = 2">',
    "</script><script>window.__pwned = 3</script>",
    "<!--<script>window.__pwned = 4</script>",
    "\u2028</SCRIPT >\u2029<img src=x onerror=window.__pwned=5>&amp;",
]
RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        skip_or_fail("Debian's chromium is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright (Python) is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def report(tmp_path, monkeypatch, capsys):
    def build(*args):
        monkeypatch.chdir(REPO)
        html, js = tmp_path / "report.html", tmp_path / "report.json"
        main(["scan", *args, "-f", f"html={html}", "-f", f"json={js}"])
        capsys.readouterr()
        return html, json.loads(js.read_text())

    return build


# Scrolls the window down a viewport at a time and records every row of ``selector`` it
# meets, in order; ``gaps`` counts windows that did not overlap the one before (a row skipped).
# Two animation frames, or half a second when a loaded machine's compositor gives none
# (a frame that never came once held a whole CI run): what is measured after it is still
# asserted, so waiting less can only fail a test, never pass one.
TWO_FRAMES = "new Promise(r => { requestAnimationFrame(() => requestAnimationFrame(r)); setTimeout(r, 500); })"

SCROLL_THROUGH = """async (selector) => {
  const frames = () => new Promise(r => { requestAnimationFrame(() => requestAnimationFrame(r)); setTimeout(r, 500); });
  const seen = [], known = new Set();
  let gaps = 0, previous = -1;
  window.scrollTo(0, 0);
  await frames();
  for (;;) {
    const rows = Array.from(document.querySelectorAll(selector));
    const key = row => row.id || row.getAttribute("data-index");
    if (rows.length && seen.length && !known.has(key(rows[0]))) { gaps += 1; }
    for (const row of rows) {
      if (!known.has(key(row))) { known.add(key(row)); seen.push({key: key(row), text: row.innerText}); }
    }
    if (window.scrollY === previous) { break; }
    previous = window.scrollY;
    window.scrollBy(0, Math.floor(window.innerHeight * 0.8));
    await frames();
  }
  return {seen, gaps, rendered: document.querySelectorAll(selector).length};
}"""


class Page:
    """A page with every request, console error and page error recorded; ``with Page(...)
    as page`` closes its browser context however the block ends."""

    def __init__(
        self,
        browser,
        path: Path,
        *,
        javascript: bool = True,
        viewport=(1280, 1400),
        fragment: str = "",
        init_script: str = "",
        **options,
    ):
        width, height = viewport
        self.context = browser.new_context(
            java_script_enabled=javascript, viewport={"width": width, "height": height}, **options
        )
        self.page = self.context.new_page()
        if init_script:
            self.page.add_init_script(init_script)
        self.javascript = javascript
        self.requests, self.errors = [], []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.url = path.as_uri()
        self.page.goto(self.url + fragment)

    def ready(self) -> None:
        self.page.wait_for_selector("html[data-ready]", state="attached")

    def settle(self) -> None:
        """Wait for two frames: scroll handlers and media-query changes have run. Without
        JavaScript there is nothing to wait for (and no frame callback ever runs)."""
        if not self.javascript:
            return
        self.page.evaluate(TWO_FRAMES)

    def visible_rows(self) -> int:
        return self.page.locator("tr.finding:visible").count()

    def scroll_through(self, selector: str = "#findings-table tr.finding") -> list[dict]:
        """Every row of the list, met by scrolling from the top to the bottom of the page."""
        result = self.page.evaluate(SCROLL_THROUGH, selector)
        assert result["gaps"] == 0, "a scroll step skipped rows"
        return result["seen"]

    def ids(self, selector: str = "#findings-table tr.finding") -> list[str]:
        return [row["key"] for row in self.scroll_through(selector)]

    def rendered(self, selector: str = "#findings-table tr.finding") -> int:
        return self.page.locator(selector).count()

    def close(self):
        self.context.close()

    def __enter__(self) -> Page:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _active(report_json):
    return [f for f in report_json["findings"] if f["suppressed"] is None]


def _in_page_order(findings):
    """Worst first, then the JSON report's order (file, line, column, rule)."""
    return sorted(findings, key=lambda f: -RANK[f["severity"]])


def _anchors(findings):
    return [f"f-{f['fingerprint']}" for f in findings]


def _display(location):
    if location.get("file"):
        if location.get("start_line"):
            return f"{location['file']}:{location['start_line']}:{location['start_column']}"
        return location["file"]
    return location.get("arn") or "<unknown>"


def _natural(text):
    """Case ignored, runs of digits by value: the order the page's sort promises."""
    return [(len(p.lstrip("0")), p.lstrip("0")) if p.isdigit() else p for p in re.split(r"(\d+)", text.lower())]


def test_rows_filters_and_search(browser, report, tmp_path):
    html, data = report("examples/", "--config", "examples/ib-audit.toml")
    with Page(browser, html) as page:
        page.ready()
        active = _in_page_order(_active(data))
        total = len(active)
        assert page.ids() == _anchors(active)
        assert page.page.locator("#shown").inner_text() == f"Showing {total} of {total} findings"
        # Severity filter: hide medium.
        page.page.get_by_role("checkbox", name="medium").uncheck()
        assert page.ids() == _anchors(f for f in active if f["severity"] != "medium")
        page.page.get_by_role("checkbox", name="medium").check()
        # Free text search, case-insensitive, on any cell.
        page.page.get_by_label("Search", exact=True).fill("COMMUNITY-IMAGE")
        assert page.ids() == _anchors(f for f in active if "public-ami.json" in f["location"]["file"])
        page.page.get_by_label("Search", exact=True).fill("")
        # Rule filter.
        page.page.get_by_label("Rule", exact=True).select_option("IBD003")
        ibd003 = [f for f in active if f["rule_id"] == "IBD003"]
        assert page.ids() == _anchors(ibd003) and len(ibd003) == 5
        assert page.page.locator("#shown").inner_text() == f"Showing {len(ibd003)} of {total} findings"
        page.page.get_by_label("Rule", exact=True).select_option("")
        # Sorting by rule puts IBD001 first, clicking again reverses; ties keep the page's order.
        page.page.get_by_role("button", name="Rule").click()
        assert page.ids() == _anchors(sorted(active, key=lambda f: f["rule_id"]))
        assert active[0]["rule_id"] != "IBD001"
        page.page.get_by_role("button", name="Rule").click()
        assert page.ids() == _anchors(sorted(active, key=lambda f: f["rule_id"], reverse=True))
        # Expanding a row shows the rule's help and the highlighted source line.
        page.page.evaluate("window.scrollTo(0, 0)")
        page.page.locator("tr.finding summary").first.click()
        details = page.page.locator("tr.finding details").first
        details.locator(".help").wait_for()
        assert "Why." in details.inner_text() and "Fix." in details.inner_text()
        first = sorted(active, key=lambda f: f["rule_id"], reverse=True)[0]
        hit = details.locator("span.hit")
        assert hit.count() >= 1
        assert hit.first.inner_text().startswith(str(first["location"]["start_line"]))
        page.page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        assert page.errors == []
        assert page.requests == [page.url]


def test_every_finding_is_in_the_page_without_javascript(browser, report):
    html, data = report("examples/", "--config", "examples/ib-audit.toml")
    with Page(browser, html, javascript=False) as page:
        assert page.visible_rows() == len(_active(data))
        assert page.page.locator("tr.finding").evaluate_all("rows => rows.map(r => r.id)") == _anchors(
            _in_page_order(_active(data))
        )
        text = page.page.locator("body").inner_text()
        for f in _active(data):
            assert f["message"] in text
        assert "Without JavaScript this page lists" not in text  # nothing left out at this size
        assert "Loading the" not in text
        assert not page.page.locator("#controls").is_visible()  # controls need JS
        # Suppressed findings sit in their own section, with the reason.
        page.page.locator("#suppressed-title + details > summary").click()
        suppressed = page.page.locator("tr.suppressed").all_inner_texts()
        assert len(suppressed) == 2
        assert any("tag: accepted until Q3 (SEC-142)" in row for row in suppressed)
        assert any("inline: replaced by GoldenDistribution in Q3 (PLAT-881)" in row for row in suppressed)


def test_script_rows_read_like_the_server_rendered_rows(browser, report):
    """The rows the script builds and the rows rendered for readers without JavaScript
    are the same table: same cells, same text, expanded or not."""
    html, _ = report("examples/", "--config", "examples/ib-audit.toml")
    with Page(browser, html, javascript=False) as static, Page(browser, html) as live:
        live.ready()
        without = static.page.locator("tr.finding").evaluate_all("rows => rows.map(r => [r.id, r.innerText])")
        assert [(row["key"], row["text"]) for row in live.scroll_through()] == [tuple(r) for r in without]
        # Expanded: printing renders every row expanded at once.
        static.page.evaluate("document.querySelectorAll('tr.finding details').forEach(d => { d.open = true; })")
        live.page.emulate_media(media="print")
        live.settle()
        assert live.rendered() == len(without)
        expanded = "rows => rows.map(r => r.querySelector('details').innerText.replace(/\\s+/g, ' '))"
        static_text = static.page.locator("tr.finding").evaluate_all(expanded)
        live_text = live.page.locator("tr.finding").evaluate_all(expanded)
        # The script also copies the rule's help into an expanded row; the rest is the same.
        help_text = live.page.locator("tr.finding .help-slot").evaluate_all(
            "slots => slots.map(s => s.innerText.replace(/\\s+/g, ' '))"
        )
        assert len(live_text) == len(static_text)
        for mine, theirs, helped in zip(live_text, static_text, help_text, strict=True):
            assert helped.strip() and mine.replace(helped.strip(), "").replace("  ", " ") == theirs


def test_hostile_configuration_text_stays_text(browser, report, tmp_path):
    config = {
        "distributionConfiguration": {
            "arn": "arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/x",
            "name": PAYLOADS[0],
            "description": PAYLOADS[1],
            "distributions": [
                {
                    "region": PAYLOADS[2],
                    "amiDistributionConfiguration": {
                        "name": PAYLOADS[3],
                        "amiTags": {PAYLOADS[1]: PAYLOADS[2]},
                        PAYLOADS[2]: PAYLOADS[0],
                        PAYLOADS[4]: PAYLOADS[4],
                    },
                }
            ],
            "tags": {PAYLOADS[0]: PAYLOADS[3]},
        }
    }
    hostile = tmp_path / "hostile.json"
    hostile.write_text(json.dumps(config, indent=2))
    html, data = report(str(hostile))
    assert len(_active(data)) >= 3  # IBD001, IBD009, IBD016 echo the payloads
    # The embedded data is ASCII JSON in which no character can end the script element.
    raw = html.read_text(encoding="utf-8")
    embedded = raw[raw.index('<script type="application/json" id="ib-audit-data">') :]
    embedded = embedded[embedded.index(">") + 1 : embedded.index("</script>")]
    assert embedded.isascii()
    assert not {"<", ">", "&", "\u2028", "\u2029"} & set(embedded)
    for javascript in (True, False):
        with Page(browser, html, javascript=javascript, viewport=(1280, 8000)) as page:  # every row stays rendered
            for summary in page.page.locator("tr.finding summary").all():
                summary.click()
            assert page.page.evaluate("typeof window.__pwned") == "undefined"
            assert page.page.locator("img").count() == 0
            assert page.errors == []
            assert page.requests == [page.url]
            body = page.page.locator("body").inner_text()
            assert PAYLOADS[0] in body and PAYLOADS[2] in body
            messages = page.page.locator("tr.finding summary").all_inner_texts()
            assert messages == [f["message"] for f in _in_page_order(_active(data))]
            assert any(PAYLOADS[4].replace("\u2028", "").replace("\u2029", "")[:8] in m for m in messages)
            if javascript:
                data_json = json.loads(page.page.locator("#ib-audit-data").text_content())
                assert data_json["total"] == len(_active(data))
            page.page.screenshot(path=str(tmp_path / f"hostile-{javascript}.png"), full_page=True)


def test_errors_are_impossible_to_miss(browser, report, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"distributions": [')
    html, _ = report(str(bad), str(EXAMPLES / "compliant-baseline.json"))
    with Page(browser, html) as page:
        alert = page.page.get_by_role("alert")
        assert alert.is_visible()
        assert "1 input(s) could not be audited" in alert.inner_text()
        assert "bad.json" in alert.inner_text()
        assert page.page.locator(".verdict").inner_text() == "INCOMPLETE"


def test_by_resource_view_never_hides_unresolved_sharing(browser, report):
    html, _ = report("examples/cloudformation/golden-pipeline.yaml")
    for javascript in (True, False):
        with Page(browser, html, javascript=javascript) as page:
            rows = page.page.locator("table.resources:visible tbody:not(.spacer)").first.locator("tr")
            text = rows.first.inner_text()
            assert "!Ref WorkloadAccountId (unresolved)" in text  # copied to an account we cannot name
            assert "!Ref KmsKeyArn (unresolved)" in text
            public = rows.nth(1).inner_text()
            assert "PUBLIC:" in public and "group all" in public and "none (account default)" in public


def test_by_control_view_counts_configurations_and_filters_the_table(browser, report):
    import tomllib

    html, data = report(str(EXAMPLES / "public-ami.json"), str(EXAMPLES / "compliant-baseline.json"))
    table = tomllib.loads((REPO / "auditor" / "controls.toml").read_text())
    catalogue = table["frameworks"]["nist-800-53-r5"]["controls"]
    failing_rules = {}  # rule -> configurations with an unsuppressed finding
    for f in _active(data):
        failing_rules.setdefault(f["rule_id"], set()).add(f["target"])
    expected = {}
    for rule_id, entry in table["rules"].items():
        for control in entry.get("nist-800-53-r5", []):
            expected.setdefault(control, set()).update(failing_rules.get(rule_id, set()))
    audited = len(data["targets"])
    with Page(browser, html, javascript=False) as page:
        rows = page.page.locator("table.by-control[data-framework=nist-800-53-r5] tr.control")
        seen = {}
        for i in range(rows.count()):
            row = rows.nth(i)
            control = row.get_attribute("data-control").removeprefix("NIST.800-53.r5 ")
            cells = [row.locator("td").nth(n).inner_text() for n in range(3)]
            seen[control] = cells
            assert row.locator("th").inner_text() == f"{control} {catalogue[control]}"
        assert seen == {
            c: ["FAIL" if failed else "PASS", str(audited - len(failed)), str(len(failed))]
            for c, failed in expected.items()
        }
        assert seen["AC-22"] == ["FAIL", "1", "1"]  # the public AMI, nothing else
        ac22 = rows.filter(has=page.page.locator("th", has_text="AC-22"))
        ac22.locator("summary").click()
        (ibd002,) = [f for f in _active(data) if f["rule_id"] == "IBD002"]
        assert ac22.locator("li").all_inner_texts() == [f"critical IBD002 community-image: {ibd002['message']}"]
        note = " ".join(table["frameworks"]["aws-fsbp"]["note"].split())
        assert (
            f"No rule that ran evidences a control of this framework. {note}" in page.page.locator("body").inner_text()
        )
    with Page(browser, html) as page:
        page.ready()
        # Only controls a finding evidences are offered, in catalogue order.
        failing = [c for c in catalogue if expected.get(c)]
        assert page.page.locator("#control-filter option").all_inner_texts() == [
            "all controls",
            *[f"NIST.800-53.r5 {c}" for c in failing],
        ]
        page.page.get_by_label("Control", exact=True).select_option("NIST.800-53.r5 AC-22")
        assert page.ids() == _anchors([ibd002])
        assert page.page.locator("#shown").inner_text() == f"Showing 1 of {len(_active(data))} findings"
        assert page.errors == []


def test_by_resource_view_shows_account_context_facts(browser, tmp_path):
    """Key state, who can use the key and block public access sit beside each distribution,
    readable without JavaScript and escaped like everything else (the texts come from AWS)."""
    from auditor.model import AuditResult, Origin, Target
    from auditor.reports import html as html_report

    key = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    config = {
        "name": "golden",
        "distributions": [
            {
                "region": "eu-west-1",
                "amiDistributionConfiguration": {"kmsKeyId": key, "targetAccountIds": ["444455556666"]},
            },
            {"region": "us-east-1", "amiDistributionConfiguration": {"launchPermission": {"userGroups": ["all"]}}},
        ],
    }
    target = Target(id="golden.json", name="golden", origin=Origin(kind="json", file="golden.json"), config=config)
    notes = {
        "/distributions/0": {
            "KMS key": f"{key}: Enabled, SYMMETRIC_DEFAULT",
            "Who can use the key": "account 444455556666's EC2ImageBuilderDistributionCrossAccountRole: no",
            "Block public access for AMIs": "unblocked (managed by account)",
        },
        "/distributions/1": {"Block public access for AMIs": PAYLOADS[1]},
    }
    result = AuditResult(targets=(target,), findings=(), errors=(), facts={"golden.json": notes})
    html = tmp_path / "context.html"
    with html.open("w", encoding="utf-8") as stream:
        html_report.write(result, stream)
    for javascript in (True, False):
        with Page(browser, html, javascript=javascript) as page:
            header = page.page.locator("table.resources:visible thead").inner_text()
            assert "Account context" in header
            rows = page.page.locator("table.resources:visible tbody:not(.spacer) tr")
            first, second = rows.nth(0).locator("td.facts").inner_text(), rows.nth(1).locator("td.facts").inner_text()
            assert first.splitlines() == [
                f"KMS key: {key}: Enabled, SYMMETRIC_DEFAULT",
                "Who can use the key: account 444455556666's EC2ImageBuilderDistributionCrossAccountRole: no",
                "Block public access for AMIs: unblocked (managed by account)",
            ]
            assert second == f"Block public access for AMIs: {PAYLOADS[1]}"
            if javascript:
                assert page.page.evaluate("typeof window.__pwned") == "undefined"
            assert page.page.locator("img").count() == 0
            assert page.errors == [] and page.requests == [page.url]


def _audited_in_every_scenario(path: Path, html: Path) -> list:
    """The HTML report of a template audited through the library (``engine.audit``), whose
    targets keep every scenario, and its findings."""
    from auditor.config import Settings
    from auditor.engine import audit, configure_rules
    from auditor.plugins import PluginHost
    from auditor.reports import html as html_report
    from auditor.sources import load_paths

    host, settings = PluginHost(load_entry_points=False), Settings()
    host.configure(settings)
    loaded = load_paths([str(path)], host.file_sources(), 10_000_000)
    result = audit(host, configure_rules(host, settings), loaded.targets, loaded.errors, settings)
    assert len(result.targets) == 1 and len(result.targets[0].scenarios) > 1
    with html.open("w", encoding="utf-8") as stream:
        html_report.write(result, stream)
    return list(result.findings)


def _sharing_rows(page: Page) -> list[list[str]]:
    """Region, kind, who can launch, copies and key of each by-resource row, as shown."""
    rows = page.page.locator("table.resources:visible tbody:not(.spacer) tr")
    return [[cell.strip() for cell in row.locator("td").all_inner_texts()[-5:]] for row in rows.all()]


def _conditional_sharing_expected(text: str) -> list[list[str]]:
    """The rows examples/cloudformation/conditional-sharing.yaml deploys, read off its text:
    us-east-1 is public only when IsProd is true; eu-west-1 has no key only then."""
    keys = dict(re.findall(r"^    ([a-z]+-[a-z]+-\d):\n      Key: (\S+)$", text, re.M))
    share_with = re.search(r"ShareWith:\n.*\n    Default: \"([\d,]+)\"", text).group(1).split(",")
    (eu_copies,) = re.findall(r"TargetAccountIds: \[\"(\d+)\"\]", text)
    assert "UserGroups: !If [IsProd, [all], !Ref AWS::NoValue]" in text
    assert "KmsKeyId: !If [IsProd, !Ref AWS::NoValue, !FindInMap [RegionKeys, eu-west-1, Key]]" in text
    return [
        [
            "us-east-1",
            "AMI",
            "PUBLIC: group all (when condition IsProd is true)\nthis account only (when condition IsProd is false)",
            ", ".join(share_with),
            keys["us-east-1"],
        ],
        [
            "eu-west-1",
            "AMI",
            "this account only",
            eu_copies,
            f"none (account default) (when condition IsProd is true)\n{keys['eu-west-1']} (when condition IsProd is false)",
        ],
    ]


def test_by_resource_view_shows_each_scenario_where_they_differ(browser, tmp_path):
    """A template whose sharing depends on a condition: the by-resource view shows each
    value with when it holds, in the findings' words, never one branch's value as *the*
    value (a public AMI shown as private is the failure a reader cannot see)."""
    path = EXAMPLES / "cloudformation" / "conditional-sharing.yaml"
    html = tmp_path / "conditional.html"
    findings = _audited_in_every_scenario(path, html)
    (public,) = [f for f in findings if f.rule_id == "IBD002"]
    assert public.message.endswith("(when condition IsProd is true)")  # the wording the rows reuse
    expected = _conditional_sharing_expected(path.read_text())
    for javascript in (True, False):
        with Page(browser, html, javascript=javascript) as page:
            if javascript:
                page.ready()
            assert _sharing_rows(page) == expected, javascript
            marked = page.page.locator("table.resources:visible .branch").filter(has=page.page.locator(".public"))
            assert marked.all_inner_texts() == ["PUBLIC: group all (when condition IsProd is true)"]
            # The finding's configuration (no source lines: the library call made none) in each scenario.
            row = page.page.locator(f"#f-{public.fingerprint}")
            row.locator("summary").click()
            assert row.locator("pre.snippet").inner_text().splitlines() == [
                "when condition IsProd is true:",
                '"all"',  # UserGroups: [all]
                "when condition IsProd is false (member missing; showing the object that lacks it):",
                "{}",  # LaunchPermissionConfiguration whose only member is AWS::NoValue
            ]
            assert page.errors == [] and page.requests == [page.url]


def test_by_resource_view_reads_as_one_configuration_where_scenarios_agree(browser, tmp_path):
    """Scenarios that agree on every shown value read as a single configuration does;
    a distribution only some scenarios have says when, in its region."""
    path = tmp_path / "stack.yaml"
    path.write_text(
        """\
Parameters:
  Environment: {Type: String, Default: staging, AllowedValues: [staging, prod]}
Conditions:
  IsProd: !Equals [!Ref Environment, prod]
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            KmsKeyId: arn:aws:kms:us-east-1:111122223333:key/one
            TargetAccountIds: ["444455556666"]
            AmiTags: {stage: !If [IsProd, prod, staging]}
        - !If
          - IsProd
          - Region: eu-west-1
            AmiDistributionConfiguration:
              KmsKeyId: arn:aws:kms:eu-west-1:111122223333:key/two
          - !Ref AWS::NoValue
"""
    )
    html = tmp_path / "agree.html"
    _audited_in_every_scenario(path, html)
    for javascript in (True, False):
        with Page(browser, html, javascript=javascript) as page:
            if javascript:
                page.ready()
            assert _sharing_rows(page) == [
                ["us-east-1", "AMI", "this account only", "444455556666", "arn:aws:kms:us-east-1:111122223333:key/one"],
                [
                    "eu-west-1 (when condition IsProd is true)",
                    "AMI",
                    "this account only",
                    "none",
                    "arn:aws:kms:eu-west-1:111122223333:key/two",
                ],
            ]
            assert page.page.locator("table.resources:visible .branch").count() == 0
            assert page.errors == []


def test_scan_by_resource_view_shows_each_scenario_where_they_differ(browser, report):
    """What ``ib-audit scan ... -f html=`` writes: the same rows as the library's audit."""
    path = EXAMPLES / "cloudformation" / "conditional-sharing.yaml"
    html, _ = report(str(path))
    with Page(browser, html, javascript=False) as page:
        assert _sharing_rows(page) == _conditional_sharing_expected(path.read_text())


def test_layout_on_a_phone_and_in_dark_mode(browser, report, tmp_path):
    """Screenshots at a phone's size and in dark mode (see pytest's tmp dir); the page
    never scrolls sideways on a phone and a finding's message keeps a readable width."""
    html, _ = report("examples/", "--config", "examples/ib-audit.toml")
    with Page(browser, html, viewport=(390, 844)) as page:
        page.ready()
        assert page.page.evaluate("document.documentElement.scrollWidth") <= 390
        page.page.locator("#findings-title").scroll_into_view_if_needed()
        message = page.page.locator("tr.finding td:last-child").first.bounding_box()
        assert message["width"] >= 300
        page.page.locator("tr.finding summary").first.click()
        page.page.screenshot(path=str(tmp_path / "phone.png"))
    with Page(browser, html, color_scheme="dark", viewport=(1280, 900)) as page:
        page.ready()
        assert page.page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(20, 23, 27)"
        page.page.screenshot(path=str(tmp_path / "dark.png"))
        page.page.locator("#findings-title").scroll_into_view_if_needed()
        page.page.screenshot(path=str(tmp_path / "dark-findings.png"))


# -- an estate: more findings than the page renders at once, or lists without JavaScript --


def _estate(folder: Path, configs: int, files: int = 6) -> None:
    """Saved API JSON: every 5th configuration public (IBD002), every 3rd without a KMS key
    for its copies (IBD001), every 2nd with a fixed AMI name (IBD009), every 40th with a
    container distribution without tags (IBD013); every 13th suppresses IBD009 by tag."""
    per_file = configs // files
    for f in range(files):
        docs = []
        for n in range(f * per_file, (f + 1) * per_file):
            ami = {
                "name": f"golden-{n}" if n % 2 == 0 else f"golden-{n}-{{{{ imagebuilder:buildDate }}}}",
                "kmsKeyId": f"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-{n:012d}",
                "targetAccountIds": ["444455556666"],
            }
            if n % 3 == 0:
                del ami["kmsKeyId"]
            if n % 5 == 0:
                ami["launchPermission"] = {"userGroups": ["all"]}
            distributions = [{"region": "us-east-1", "amiDistributionConfiguration": ami}]
            if n % 40 == 0:
                repository = {"service": "ECR", "repositoryName": f"app-{n}"}
                distributions.append(
                    {"region": "us-west-2", "containerDistributionConfiguration": {"targetRepository": repository}}
                )
            tags = {"owner": "platform"}
            if n % 13 == 0:
                tags["ib-audit:ignore"] = f"IBD009:fixed name kept for cfg-{n} (PLAT-{n})"
            docs.append(
                {
                    "distributionConfiguration": {
                        "arn": f"arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/cfg-{n}",
                        "name": f"cfg-{n}",
                        "distributions": distributions,
                        "tags": tags,
                    }
                }
            )
        (folder / f"estate-{f}.json").write_text(json.dumps(docs, indent=2))


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    """600 configurations, about 620 findings; the page lists 60 of them without JavaScript."""
    from auditor.reports import html as html_report

    folder = tmp_path_factory.mktemp("estate")
    _estate(folder, 600)
    out = tmp_path_factory.mktemp("estate-report")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(html_report, "STATIC_FINDINGS", 60)
        patch.setattr(html_report, "STATIC_RESOURCES", 40)
        patch.setattr(html_report, "STATIC_SUPPRESSED", 10)
        patch.chdir(folder)
        main(["scan", ".", "-f", f"html={out / 'estate.html'}", "-f", f"json={out / 'estate.json'}"])
    return out / "estate.html", json.loads((out / "estate.json").read_text()), out


def test_estate_renders_rows_on_demand_and_reaches_every_one(browser, estate):
    html, data, out = estate
    active = _in_page_order(_active(data))
    assert len(active) > 500
    with Page(browser, html, viewport=(1280, 900)) as page:
        page.ready()
        assert page.rendered() < 100  # only the rows near the viewport
        assert page.page.locator("#findings-table").get_attribute("aria-rowcount") == str(len(active) + 1)
        assert page.ids() == _anchors(active)
        page.page.screenshot(path=str(out / "estate-bottom.png"))
        assert page.rendered() < 150
        page.page.evaluate("window.scrollTo(0, document.body.scrollHeight / 2)")
        page.settle()
        page.page.screenshot(path=str(out / "estate-middle.png"))
        assert page.page.locator("tr.finding").count() > 5  # the middle of the list is on screen, not a gap
        assert page.errors == [] and page.requests == [page.url]


def test_estate_filters_search_and_sorts(browser, estate):
    html, data, _ = estate
    active = _in_page_order(_active(data))
    with Page(browser, html, viewport=(1280, 900)) as page:
        page.ready()
        search = page.page.get_by_label("Search", exact=True)
        search.fill("CFG-17")  # resource cfg-17 and cfg-170...cfg-179, in names, messages and locations
        expected = [f for f in active if _search_matches(data, f, "cfg-17")]
        assert len(expected) > 5
        assert page.ids() == _anchors(expected)
        assert page.page.locator("#shown").inner_text() == f"Showing {len(expected)} of {len(active)} findings"
        search.fill("")
        page.page.get_by_role("checkbox", name="critical").uncheck()
        page.page.get_by_label("Rule", exact=True).select_option("IBD009")
        assert page.ids() == _anchors(f for f in active if f["rule_id"] == "IBD009")
        assert page.page.locator("[data-count-for=critical]").inner_text() == "(0)"
        page.page.get_by_label("Rule", exact=True).select_option("")
        assert page.page.locator("[data-count-for=critical]").inner_text() == (
            f"({sum(1 for f in active if f['severity'] == 'critical')})"
        )
        page.page.get_by_role("checkbox", name="critical").check()
        # Sort by resource: cfg-9 before cfg-10 (digits by value), ties in the page's order.
        page.page.get_by_role("button", name="Resource").click()
        assert page.ids() == _anchors(sorted(active, key=lambda f: _natural(_resource(data, f))))
        page.page.get_by_role("button", name="Location").click()
        by_place = sorted(
            active,
            key=lambda f: (_natural(f["location"]["file"]), f["location"]["start_line"], f["location"]["start_column"]),
        )
        assert page.ids() == _anchors(by_place)
        page.page.get_by_role("button", name="Location").click()
        assert page.page.locator("th[aria-sort=descending]").inner_text().startswith("Location")
        page.page.get_by_role("button", name="Severity").click()
        assert page.ids() == _anchors(active)
        assert page.errors == []


def _resource(data, finding):
    return next(t["name"] for t in data["targets"] if t["id"] == finding["target"])


def _search_matches(data, finding, needle):
    """What the search box promises: the needle, case ignored, in any cell of the row."""
    f = finding
    cells = [
        f["severity"],
        f["rule_id"],
        f["rule"],
        _resource(data, f),
        _display(f["location"]),
        f["path"],
        f["message"],
    ]
    return any(needle.lower() in cell.lower() for cell in cells)


# Types into the search box the moment the page is ready, in the same task as the page's
# script: before anything the page could have left for idle time has run.
TYPE_AT_READY = """window.__idleRan = false;
window.__idleBeforeSearch = null;
const idle = window.requestIdleCallback;
window.requestIdleCallback = (f, o) => idle.call(window, (d) => { window.__idleRan = true; f(d); }, o);
const early = setTimeout;
window.setTimeout = (f, ...rest) => early((...a) => { window.__idleRan = true; f(...a); }, ...rest);
new MutationObserver((_, observer) => {
  if (!document.documentElement.hasAttribute("data-ready")) { return; }
  observer.disconnect();
  const box = document.getElementById("text-filter");
  box.value = NEEDLE;
  box.dispatchEvent(new Event("input", {bubbles: true}));
  window.__idleBeforeSearch = window.__idleRan;
}).observe(document, {attributes: true, subtree: true, attributeFilter: ["data-ready"]});"""


def test_estate_search_shows_the_same_findings_from_the_first_keystroke(browser, estate):
    """A search typed the moment the page is ready, and searches for each kind of cell
    after it, show exactly the findings whose row holds the text, case ignored."""
    html, data, _ = estate
    active = _in_page_order(_active(data))
    with Page(browser, html, viewport=(1280, 900), init_script=TYPE_AT_READY.replace("NEEDLE", '"CFG-17"')) as page:
        page.ready()
        assert page.page.evaluate("window.__idleBeforeSearch") is False  # typed before any deferred work ran
        expected = [f for f in active if _search_matches(data, f, "cfg-17")]
        assert len(expected) > 5
        assert page.page.get_by_label("Search", exact=True).input_value() == "CFG-17"
        assert page.ids() == _anchors(expected)
        assert page.page.locator("#shown").inner_text() == f"Showing {len(expected)} of {len(active)} findings"
        search = page.page.get_by_label("Search", exact=True)
        needles = [
            "Critical",  # a severity
            "ibd013",  # a rule id
            "public-launch",  # part of a rule's slug
            "cfg-590",  # a resource name
            "estate-2.json:1",  # a location across its file and line
            ":106:",  # a location's line alone, between its colons
            "2.json:106:4",  # file, line and the start of the column
            "6:4",  # the end of a line and the start of a column
            ":",  # every location with a line
            "17",  # digits: in names, messages, lines and columns
            "/distributions/1",  # a path
            "NO KMSKEYID",  # part of a message, case ignored
            "no such text anywhere",
        ]
        for needle in needles:
            search.fill(needle)
            expected = [f for f in active if _search_matches(data, f, needle)]
            assert expected or needle == "no such text anywhere", needle  # each needle finds something
            assert page.ids() == _anchors(expected), needle
            assert page.page.locator("#shown").inner_text() == f"Showing {len(expected)} of {len(active)} findings"
        assert page.errors == []


def test_search_ignores_case_beyond_ascii(browser, report, tmp_path):
    """Lower case can be longer than the text (U+0130 becomes two code units) or depend
    on what follows (a final sigma): the search still shows exactly the findings whose row
    holds the needle, for every configuration, including those whose text sorts after."""
    docs = []
    # Ten U+0130 lengthen the lower-case text by ten: more than the name sorted after them.
    for n, name in enumerate(["plain-cfg", "\u0130" * 10 + "-cfg", "\u039f\u0394\u039f\u03a3-cfg", "zulu-cfg"]):
        ami = {"name": f"golden-{n}", "launchPermission": {"userGroups": ["all"]}}
        docs.append(
            {
                "distributionConfiguration": {
                    "arn": f"arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/c-{n}",
                    "name": name,
                    "distributions": [{"region": "us-east-1", "amiDistributionConfiguration": ami}],
                }
            }
        )
    (tmp_path / "names.json").write_text(json.dumps(docs, indent=2, ensure_ascii=False), encoding="utf-8")
    html, data = report(str(tmp_path / "names.json"))
    active = _in_page_order(_active(data))
    with Page(browser, html) as page:
        page.ready()
        search = page.page.get_by_label("Search", exact=True)
        for needle in ["\u0130\u0130-", "\u039f\u0394\u039f\u03a3-cfg", "\u03bf\u03b4\u03bf\u03c2-", "zulu", "-cfg"]:
            search.fill(needle)
            expected = [f for f in active if _search_matches(data, f, needle)]
            assert expected, needle
            assert page.ids() == _anchors(expected), needle
        assert page.errors == []


def test_estate_links_open_their_row(browser, estate):
    """#f-<fingerprint> scrolls to the row and opens it, though the row did not exist when
    the page loaded: for the last finding, one a filter hides, and a suppressed one."""
    html, data, out = estate
    active = _in_page_order(_active(data))
    last = active[-1]
    # Opened with the link.
    with Page(browser, html, viewport=(1280, 900), fragment=f"#f-{last['fingerprint']}") as page:
        page.ready()
        row = page.page.locator(f"#f-{last['fingerprint']}")
        _assert_on_screen(page, row)
        assert row.locator("details").get_attribute("open") is not None
        assert "targeted" in row.get_attribute("class")
        row.locator(".help").wait_for()
        page.page.screenshot(path=str(out / "estate-link.png"))
        # A finding the current filter hides: the filters give way.
        page.page.get_by_label("Rule", exact=True).select_option("IBD009")
        public = next(f for f in reversed(active) if f["rule_id"] == "IBD002")
        page.page.evaluate(f"window.location.hash = '#f-{public['fingerprint']}'")
        row = page.page.locator(f"#f-{public['fingerprint']}")
        row.wait_for()
        _assert_on_screen(page, row)
        assert page.page.get_by_label("Rule", exact=True).input_value() == ""
        assert page.page.locator("#shown").inner_text() == f"Showing {len(active)} of {len(active)} findings"
        # The by-control view links to findings the table has not rendered.
        page.page.evaluate("window.scrollTo(0, 0)")
        link = page.page.locator("table.by-control a[href^='#f-']").last
        target = link.get_attribute("href")
        link.locator("xpath=ancestor::details[1]/summary").click()
        link.click()
        _assert_on_screen(page, page.page.locator(target))
        link.click()  # the same link again (no hashchange): still taken there
        _assert_on_screen(page, page.page.locator(target))
        # A suppressed finding: its section opens.
        hidden = next(f for f in reversed(data["findings"]) if f["suppressed"] is not None)
        page.page.evaluate(f"window.location.hash = '#f-{hidden['fingerprint']}'")
        row = page.page.locator(f"#f-{hidden['fingerprint']}")
        row.wait_for()
        _assert_on_screen(page, row, below_filters=False)  # its own section: no filter bar over it
        assert hidden["suppressed"]["reason"] in row.inner_text()
        assert page.errors == [] and page.requests == [page.url]  # a request names no fragment


def _assert_on_screen(page, row, *, below_filters: bool = True):
    """The row's start is in the window; a finding's below the sticky filter bar, which
    would otherwise cover its severity, resource and message."""
    box = row.bounding_box()
    height = page.page.viewport_size["height"]
    top = 0
    if below_filters:
        bar = page.page.locator("#controls").bounding_box()
        top = bar["y"] + bar["height"]
    assert box is not None and box["y"] >= top - 1 and box["y"] + min(box["height"], 100) <= height, (box, top)


def test_estate_other_lists_render_on_demand(browser, estate):
    html, data, _ = estate
    with Page(browser, html, viewport=(1280, 900)) as page:
        page.ready()
        assert not page.page.locator("#resources-details").evaluate("d => d.open")  # 600: closed until asked
        page.page.locator("#resources-details > summary").click()
        page.settle()
        targets = sorted(
            data["targets"],
            key=lambda t: (t["origin"]["account"], t["origin"]["region"], t["origin"]["file"], t["name"]),
        )
        rows = page.scroll_through("#resources-table tbody:not(.spacer)")
        assert [row["text"].split("\n")[0] for row in rows] == [t["name"] for t in targets]
        assert page.rendered("#resources-table tbody:not(.spacer)") < 100
        public = next(row["text"] for row in rows if row["text"].startswith("cfg-5\n"))
        assert "PUBLIC: group all" in public and "1 critical, 1 high, 1 medium" not in public
        page.page.locator("#suppressed-details > summary").click()
        suppressed = _in_page_order(f for f in data["findings"] if f["suppressed"] is not None)
        assert page.ids("#suppressed-table tr.suppressed") == _anchors(suppressed)
        assert page.errors == []


def test_estate_without_javascript_lists_a_share_of_each_severity(browser, estate):
    """Without JavaScript the page lists the first findings of every severity (60 here),
    says how many it leaves out, and counts every finding per rule and severity."""
    html, data, _ = estate
    active = _in_page_order(_active(data))
    with Page(browser, html, javascript=False) as page:
        text = page.page.locator("body").inner_text()
        assert f"Without JavaScript this page lists 60 of {len(active)} findings" in text
        by_severity = {}
        for f in active:
            by_severity.setdefault(f["severity"], []).append(f)
        assert sorted(len(v) for v in by_severity.values())[0] < 20  # a small group leaves room to the others
        shares, left = {}, 60
        for position, (sev, group) in enumerate(sorted(by_severity.items(), key=lambda kv: len(kv[1]))):
            shares[sev] = min(len(group), left // (len(by_severity) - position))
            left -= shares[sev]
        listed = [f for f in active if by_severity[f["severity"]].index(f) < shares[f["severity"]]]
        ids = page.page.locator("tr.finding").evaluate_all("rows => rows.map(r => r.id)")
        assert ids == _anchors(listed) and len(ids) == 60
        counts = {}
        for f in active:
            counts.setdefault(f["rule_id"], {}).setdefault(f["severity"], 0)
            counts[f["rule_id"]][f["severity"]] += 1
        head = page.page.locator("#per-rule thead th").all_inner_texts()
        for row in page.page.locator("#per-rule tbody tr").all():
            cells = [row.locator("th").inner_text().split()[0], *row.locator("td").all_inner_texts()]
            rule = cells[0]
            assert dict(zip(head[1:-1], cells[1:-1], strict=True)) == {
                sev: str(counts[rule].get(sev, "")) for sev in head[1:-1]
            }
            assert cells[-1] == str(sum(counts[rule].values()))
        page.page.locator("#resources-details > summary").click()  # 600 configurations: closed at first
        text = page.page.locator("body").inner_text()
        assert f"Without JavaScript this page lists 40 of {len(data['targets'])} configurations" in text
        page.page.locator("#suppressed-details > summary").click()
        suppressed = sum(1 for f in data["findings"] if f["suppressed"] is not None)
        assert (
            f"Without JavaScript this page lists 10 of {suppressed} suppressed findings"
            in page.page.locator("body").inner_text()
        )


def test_estate_prints_every_filtered_row(browser, estate):
    html, data, out = estate
    active = _in_page_order(_active(data))
    with Page(browser, html, viewport=(1280, 900)) as page:
        page.ready()
        page.page.get_by_label("Rule", exact=True).select_option("IBD002")
        page.page.emulate_media(media="print")
        page.settle()
        ids = page.page.locator("#findings-table tr.finding").evaluate_all("rows => rows.map(r => r.id)")
        assert ids == _anchors(f for f in active if f["rule_id"] == "IBD002")
        assert page.page.locator("#findings-table tr.finding details[open]").count() == len(ids)
        page.page.screenshot(path=str(out / "estate-print.png"))
        page.page.emulate_media(media="screen")
        page.settle()
        assert page.rendered() < 100
        assert page.errors == []


def _cfn_unresolved_keys(folder: Path, same: int) -> Path:
    """``same`` configurations whose KMS key is a parameter (one could-not-verify cause),
    and one whose key is one only under a condition (a cause of its own); the file's name
    is markup."""
    resources = [
        f"  Golden{i}:\n    Type: AWS::ImageBuilder::DistributionConfiguration\n    Properties:\n"
        f"      Name: golden-{i}\n      Distributions:\n        - Region: us-east-1\n"
        f"          AmiDistributionConfiguration:\n            Name: golden-{{{{ imagebuilder:buildDate }}}}\n"
        f"            KmsKeyId: !Ref Key\n"
        for i in range(same)
    ]
    resources.append(
        "  Odd:\n    Type: AWS::ImageBuilder::DistributionConfiguration\n    Properties:\n"
        "      Name: odd\n      Distributions:\n        - Region: us-west-2\n"
        "          AmiDistributionConfiguration:\n            Name: odd-{{ imagebuilder:buildDate }}\n"
        "            KmsKeyId:\n              Fn::If: [UseKey, !Ref Key, "
        "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab]\n"
    )
    template = folder / "<img src=x onerror=window.__pwned=9>.yaml"
    template.write_text(
        "Parameters:\n  Key: {Type: String}\n  Encrypt: {Type: String}\n"
        'Conditions:\n  UseKey: !Equals [!Ref Encrypt, "yes"]\nResources:\n' + "".join(resources)
    )
    return template


def test_could_not_verify_is_one_group_per_cause_with_and_without_javascript(browser, tmp_path, monkeypatch, capsys):
    """Issue 18's grouping survives the page's script: one item per (rule, reason), the
    configurations under it (at most UNVERIFIED_SHOWN, then how many more), the same with
    and without JavaScript, in a scan's page and in a merged report's page."""
    from auditor.reports import html as html_report

    folder = tmp_path / "iac"
    folder.mkdir()
    _cfn_unresolved_keys(folder, 8)
    monkeypatch.setattr(html_report, "UNVERIFIED_SHOWN", 5)
    monkeypatch.chdir(tmp_path)
    scanned, report_json, merged = tmp_path / "scan.html", tmp_path / "scan.json", tmp_path / "merged.html"
    main(["scan", "iac", "-f", f"html={scanned}", "-f", f"json={report_json}"])
    main(["merge", str(report_json), "-f", f"html={merged}"])
    capsys.readouterr()
    entries = json.loads(report_json.read_text())["unverified"]
    literal = [u for u in entries if u["reason"] == "KMS key is not a literal"]
    odd = [u for u in entries if u not in literal]
    assert len(literal) == 8 and len(odd) == 1  # read off the template: 8 parameters, 1 condition
    group = "IBD001 KMS key is not a literal\n8 configuration(s)\n" + "\n".join(
        [f"{u['target']} {u['path']}" for u in literal[:5]] + ["and 3 more (the JSON report lists each)"]
    )
    single = f"IBD001 {odd[0]['target']} {odd[0]['path']}: {odd[0]['reason']}"
    for html in (scanned, merged):
        for javascript in (True, False):
            with Page(browser, html, javascript=javascript) as page:
                if javascript:
                    page.ready()
                    page.page.locator("#unverified-title").scroll_into_view_if_needed()
                    page.settle()  # the list builds the items near the viewport
                    items = page.page.locator("#unverified-list > li:not(.spacer)")
                else:
                    items = page.page.locator("section[aria-labelledby=unverified-title] noscript > ul > li")
                items.locator("details").evaluate_all("ds => ds.forEach(d => { d.open = true; })")
                page.settle()
                texts = [re.sub(r"\n+", "\n", t).strip() for t in items.all_inner_texts()]
                assert texts == [group, single], (html.name, javascript)
                assert page.page.evaluate("window.__pwned") is None
                assert page.errors == [] and page.requests == [page.url]
    # A merged report has no configurations: its by-resource rows say what it cannot know.
    with Page(browser, merged) as page:
        page.ready()
        rows = [row["text"] for row in page.scroll_through("#resources-table tbody:not(.spacer)")]
        names = [f"golden-{i}" for i in range(8)] + ["odd"]
        assert sorted(r.split("\n")[0] for r in rows) == names
        assert all("not recorded in a merged report" in r for r in rows)
