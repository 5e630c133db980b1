"""HTML report, opened in a real headless Chromium (Debian's package, driven by Playwright).

Skips where chromium is absent; CI sets IB_AUDIT_NO_SKIP=1, which turns that skip
into a failure.
"""

from __future__ import annotations

import json
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
]


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


class Page:
    """A page with every request, console error and page error recorded."""

    def __init__(self, browser, path: Path, *, javascript: bool = True):
        self.context = browser.new_context(java_script_enabled=javascript, viewport={"width": 1280, "height": 1400})
        self.page = self.context.new_page()
        self.requests, self.errors = [], []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.url = path.as_uri()
        self.page.goto(self.url)

    def visible_rows(self) -> int:
        return self.page.locator("tr.finding:visible").count()

    def close(self):
        self.context.close()


def _active(report_json):
    return [f for f in report_json["findings"] if f["suppressed"] is None]


def test_rows_filters_and_search(browser, report, tmp_path):
    html, data = report("examples/", "--config", "examples/ib-audit.toml")
    page = Page(browser, html)
    try:
        total = len(_active(data))
        assert page.page.locator("tr.finding").count() == total
        assert page.visible_rows() == total
        assert page.page.locator("#shown").inner_text() == f"Showing {total} of {total} findings"
        # Severity filter: hide medium.
        page.page.get_by_role("checkbox", name="medium").uncheck()
        not_medium = sum(1 for f in _active(data) if f["severity"] != "medium")
        assert page.visible_rows() == not_medium
        page.page.get_by_role("checkbox", name="medium").check()
        # Free text search, case-insensitive, on any cell.
        page.page.get_by_label("Search", exact=True).fill("COMMUNITY-IMAGE")
        assert page.visible_rows() == sum(1 for f in _active(data) if "public-ami.json" in f["location"]["file"])
        page.page.get_by_label("Search", exact=True).fill("")
        # Rule filter.
        page.page.get_by_label("Rule", exact=True).select_option("IBD003")
        ibd003 = sum(1 for f in _active(data) if f["rule_id"] == "IBD003")
        assert page.visible_rows() == ibd003 == 5
        assert page.page.locator("#shown").inner_text() == f"Showing {ibd003} of {total} findings"
        page.page.get_by_label("Rule", exact=True).select_option("")
        # Sorting by rule puts IBD001 first, clicking again reverses.
        page.page.get_by_role("button", name="Rule").click()
        first = page.page.locator("tr.finding").first.get_attribute("data-rule")
        assert first == "IBD001"
        page.page.get_by_role("button", name="Rule").click()
        assert page.page.locator("tr.finding").first.get_attribute("data-rule") == "IBD017"
        # Expanding a row shows the rule's help and the highlighted source line.
        page.page.locator("tr.finding summary").first.click()
        details = page.page.locator("tr.finding details").first
        details.locator(".help").wait_for()  # the toggle event that copies the help is async
        assert "Why." in details.inner_text() and "Fix." in details.inner_text()
        assert details.locator("span.hit").count() >= 1
        page.page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        assert page.errors == []
        assert page.requests == [page.url]
    finally:
        page.close()


def test_every_finding_is_in_the_page_without_javascript(browser, report):
    html, data = report("examples/", "--config", "examples/ib-audit.toml")
    page = Page(browser, html, javascript=False)
    try:
        assert page.visible_rows() == len(_active(data))
        text = page.page.locator("body").inner_text()
        for f in _active(data):
            assert f["message"] in text
        assert not page.page.locator("#controls").is_visible()  # controls need JS
        # Suppressed findings sit in their own section, with the reason.
        page.page.locator("#suppressed-title + details > summary").click()
        suppressed = page.page.locator("tr.suppressed").all_inner_texts()
        assert len(suppressed) == 2
        assert any("tag: accepted until Q3 (SEC-142)" in row for row in suppressed)
        assert any("inline: replaced by GoldenDistribution in Q3 (PLAT-881)" in row for row in suppressed)
    finally:
        page.close()


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
    page = Page(browser, html)
    try:
        for summary in page.page.locator("tr.finding summary").all():
            summary.click()
        assert page.page.evaluate("typeof window.__pwned") == "undefined"
        assert page.page.locator("img").count() == 0
        assert page.errors == []
        assert page.requests == [page.url]
        body = page.page.locator("body").inner_text()
        assert PAYLOADS[0] in body and PAYLOADS[2] in body
        data_json = json.loads(page.page.locator("#ib-audit-data").text_content())
        assert data_json["total"] == len(_active(data))
        page.page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)
    finally:
        page.close()


def test_errors_are_impossible_to_miss(browser, report, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"distributions": [')
    html, _ = report(str(bad), str(EXAMPLES / "compliant-baseline.json"))
    page = Page(browser, html)
    try:
        alert = page.page.get_by_role("alert")
        assert alert.is_visible()
        assert "1 input(s) could not be audited" in alert.inner_text()
        assert "bad.json" in alert.inner_text()
        assert page.page.locator(".verdict").inner_text() == "INCOMPLETE"
    finally:
        page.close()


def test_by_resource_view_never_hides_unresolved_sharing(browser, report):
    html, _ = report("examples/cloudformation/golden-pipeline.yaml")
    page = Page(browser, html)
    try:
        row = page.page.locator("table.resources tbody").first.locator("tr").first
        text = row.inner_text()
        assert "!Ref WorkloadAccountId (unresolved)" in text  # copied to an account we cannot name
        assert "!Ref KmsKeyArn (unresolved)" in text
        public = page.page.locator("table.resources tbody").first.locator("tr").nth(1).inner_text()
        assert "PUBLIC:" in public and "group all" in public and "none (account default)" in public
    finally:
        page.close()


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
    page = Page(browser, html, javascript=False)
    try:
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
    finally:
        page.close()
    page = Page(browser, html)
    try:
        # Only controls a finding evidences are offered, in catalogue order.
        failing = [c for c in catalogue if expected.get(c)]
        assert page.page.locator("#control-filter option").all_inner_texts() == [
            "all controls",
            *[f"NIST.800-53.r5 {c}" for c in failing],
        ]
        page.page.get_by_label("Control", exact=True).select_option("NIST.800-53.r5 AC-22")
        visible = page.page.locator("tr.finding:visible")
        assert [visible.nth(i).get_attribute("data-rule") for i in range(visible.count())] == ["IBD002"]
        assert page.page.locator("#shown").inner_text() == f"Showing 1 of {len(_active(data))} findings"
        assert page.errors == []
    finally:
        page.close()


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
        page = Page(browser, html, javascript=javascript)
        try:
            header = page.page.locator("table.resources thead").inner_text()
            assert "Account context" in header
            rows = page.page.locator("table.resources tbody tr")
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
        finally:
            page.close()
