"""HTML report at scale: size, write time, and how the page behaves in Chromium.

Run:  python bench/bench_html.py [--findings 10000 100000] [--baseline REV] [--no-browser]
                                  [--no-baseline-browser] [--keep DIR]

Scans generated configurations (bench_scan's, about 0.9 findings each) once through the
CLI to a JSON report, loads it back as one result (a merged report's: no configuration
bodies, so snippets are the ones the findings carry), cuts it to exactly N findings on
the configurations that hold them, and for each N writes, in this process:

- the JSON report (the comparison point: every finding, no page);
- this checkout's HTML report;
- the HTML report of git revision REV (default: the last one that rendered every row
  on the server, before issue 17), read with ``git show`` into a temporary directory.

Then it opens each page in Debian's headless Chromium and prints time to interactive
(navigation start to the page's "ready" mark, or to the load event for a page without
one), the finding rows in the DOM, and, each from the event to the layout done and to the
next frame, against issue 17's target of 100 ms:

- the first search right after load: typed the moment the page is ready, in the same
  task as its script, so that nothing the page might leave for idle time has run yet
  (a page without the mark gets it after its load event);
- a severity filter;
- a search again, and two that every finding's location (file, line and column) is
  tested against.

``--baseline main`` compares the page as main writes it, in the same run. Times are wall
clock on this machine: compare the columns of one run, not runs on different machines.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_scan import EXE, generate  # noqa: E402

# The renderer before issue 17 (every row rendered on the server, in chunked <tbody>s):
# main's last change to reports/html.py before this one.
BASELINE = "ef82cac"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]

FILTER = """async () => {
  const frame = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  const t = performance.now();
  document.querySelector("input[name=severity][value=medium]").click();
  document.body.getBoundingClientRect(); void document.body.offsetHeight;
  const sync = performance.now() - t;
  await frame();
  return [sync, performance.now() - t];
}"""
SEARCH = """async (needle) => {
  const frame = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  const s = document.getElementById("text-filter");
  const t = performance.now();
  s.value = needle;
  s.dispatchEvent(new Event("input", {bubbles: true}));
  void document.body.offsetHeight;
  const sync = performance.now() - t;
  await frame();
  return [sync, performance.now() - t];
}"""
READY = """() => {
  const mark = performance.getEntriesByName("ib-audit-ready")[0];
  const nav = performance.getEntriesByType("navigation")[0];
  return [mark ? mark.startTime : null, nav.loadEventEnd];
}"""
# The first search, typed the moment the page is ready: in the same task as the page's
# script, before any idle-time work the page may schedule could run. A page without a
# ready mark (the baseline) gets it after its load event instead.
FIRST_SEARCH = """window.__firstSearch = null;
new MutationObserver((_, observer) => {
  if (!document.documentElement.hasAttribute("data-ready")) { return; }
  observer.disconnect();
  const s = document.getElementById("text-filter");
  const t = performance.now();
  s.value = NEEDLE;
  s.dispatchEvent(new Event("input", {bubbles: true}));
  void document.body.offsetHeight;
  const sync = performance.now() - t;
  requestAnimationFrame(() => setTimeout(() => { window.__firstSearch = [sync, performance.now() - t]; }, 0));
}).observe(document, {attributes: true, subtree: true, attributeFilter: ["data-ready"]});"""
FIRST_NEEDLE = "cfg-42"
TARGET_MS = 100  # issue 17: filter and search under 100 ms at 100,000 findings


def load_baseline(rev: str, where: Path):
    """The reports/html.py of ``rev`` with its templates, importable beside ours."""
    templates = where / "templates"
    templates.mkdir(parents=True)
    names = subprocess.run(
        ["git", "-C", str(REPO), "ls-tree", "--name-only", f"{rev}:reports/templates"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in names:
        blob = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{rev}:reports/templates/{name}"], check=True, capture_output=True
        ).stdout
        (templates / name).write_bytes(blob)
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{rev}:reports/html.py"], check=True, capture_output=True, text=True
    ).stdout
    (where / "baseline_html.py").write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_html", where / "baseline_html.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from jinja2 import FileSystemLoader

    module.PackageLoader = lambda *_: FileSystemLoader(str(templates))
    return module


def scan(tmp: Path, configs: int):
    """One scan's result, read back from its JSON report."""
    from auditor.merge import merge_reports
    from auditor.plugins import PluginHost

    data = tmp / "configs"
    data.mkdir()
    generate(data, configs, 100)
    out = tmp / "scan.json"
    exe = str(EXE) if EXE.exists() else shutil.which("ib-audit")
    subprocess.run([exe, "scan", str(data), "-f", f"json={out}", "--fail-on", "never"], check=True)
    known = {rule.id: (plugin, rule) for plugin, rule in PluginHost().rules()}
    return merge_reports([out], known)


def cut(full, n: int):
    """The first configurations (in scan order) that hold ``n`` findings, with exactly those:
    a page of N findings carries the configurations they are on, not the whole scan."""
    per_target: dict[str, int] = {}
    for f in full.findings:
        per_target[f.target] = per_target.get(f.target, 0) + 1
    kept, total = [], 0
    for t in full.targets:
        if total >= n:
            break
        kept.append(t)
        total += per_target.get(t.id, 0)
    ids = {t.id for t in kept}
    return dataclasses.replace(
        full,
        targets=tuple(kept),
        findings=tuple(f for f in full.findings if f.target in ids)[:n],
        unverified=tuple(u for u in full.unverified if u.target in ids),
        facts={k: v for k, v in full.facts.items() if k in ids},
    )


def timed_write(write, result, path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    with path.open("w", encoding="utf-8") as stream:
        write(result, stream)
    return time.perf_counter() - start, path.stat().st_size


def in_browser(browser, path: Path) -> dict:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.add_init_script(FIRST_SEARCH.replace("NEEDLE", json.dumps(FIRST_NEEDLE)))
    start = time.perf_counter()
    page.goto(path.as_uri(), wait_until="load", timeout=600_000)
    wall = time.perf_counter() - start
    ready, load = page.evaluate(READY)
    if ready is not None:
        page.wait_for_function("() => window.__firstSearch !== null", timeout=60_000)
        first = page.evaluate("() => window.__firstSearch")
    else:
        first = page.evaluate(SEARCH, FIRST_NEEDLE)
    first_shown = page.locator("#shown").inner_text()
    page.evaluate(SEARCH, "")
    rows = page.locator("tr.finding").count()
    filt = page.evaluate(FILTER)
    again = page.evaluate(SEARCH, "cfg-77")  # the search strings are lowered by now
    # Locations: every finding's reads "<file>.json:<line>:<column>", so both needles are
    # tested against each finding's line and column, the worst case for a search.
    located = page.evaluate(SEARCH, "json:17")
    digits = page.evaluate(SEARCH, "42")
    shown = page.locator("#shown").inner_text()
    page.close()
    return {
        "tti": ready if ready is not None else load,
        "wall": wall,
        "rows": rows,
        "first": first,
        "first_shown": first_shown,
        "filter": filt,
        "again": again,
        "located": located,
        "digits": digits,
        "shown": shown,
    }


def _verdict(ms: float) -> str:
    return "met" if ms < TARGET_MS else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--findings", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--baseline", default=BASELINE, help="git revision whose HTML renderer to compare against")
    parser.add_argument("--no-browser", action="store_true", help="sizes and write times only")
    parser.add_argument("--keep", type=Path, help="copy the pages written to this directory, to open them yourself")
    parser.add_argument("--no-baseline-browser", action="store_true", help="skip opening the baseline's pages")
    args = parser.parse_args()

    from auditor.reports import html
    from auditor.reports.json_report import JSONReporter

    json_write = JSONReporter().write
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        baseline = load_baseline(args.baseline, tmp / "baseline")
        start = time.perf_counter()
        full = scan(tmp, int(max(args.findings) * 1.25) + 100)  # about 0.9 findings a configuration
        took = time.perf_counter() - start
        print(f"scan of {len(full.targets)} generated configurations: {len(full.findings)} findings, {took:.1f} s")
        # One small page from each writer first, so that neither pays for compiling its
        # templates in the figures (the first writer timed used to look twice as slow).
        for write in (json_write, html.write, baseline.write):
            write(cut(full, 10), io.StringIO())
        pages = []
        for n in args.findings:
            if n > len(full.findings):
                print(f"only {len(full.findings)} findings; skipping {n}")
                continue
            result = cut(full, n)
            row = {"n": n, "configurations": len(result.targets)}
            row["json"] = timed_write(json_write, result, tmp / f"{n}.json")
            row["new"] = timed_write(html.write, result, tmp / f"{n}-new.html")
            row["old"] = timed_write(baseline.write, result, tmp / f"{n}-old.html")
            pages.append(row)
            (json_s, json_b), (new_s, new_b), (old_s, old_b) = row["json"], row["new"], row["old"]
            print(f"{n:>7} findings on {row['configurations']} configurations:")
            print(f"    JSON report         {json_b / 1e6:7.1f} MB  {json_s:6.2f} s")
            print(f"    HTML now            {new_b / 1e6:7.1f} MB  {new_s:6.2f} s")
            print(f"    HTML at {args.baseline:<11} {old_b / 1e6:7.1f} MB  {old_s:6.2f} s")
            print(
                f"    now {old_b / new_b:.1f}x smaller and written {old_s / new_s:.1f}x faster; "
                f"{new_b / json_b:.2f}x the JSON report's size, {new_s / json_s:.2f}x its time"
            )
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for row in pages:
                for which in ("new", "old"):
                    shutil.copy(tmp / f"{row['n']}-{which}.html", args.keep)
        if args.no_browser:
            return 0
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for row in pages:
                for which in ("new", "old"):
                    if which == "old" and args.no_baseline_browser:
                        continue
                    m = in_browser(browser, tmp / f"{row['n']}-{which}.html")
                    label = "now" if which == "new" else f"at {args.baseline}"
                    first, filt, again = m["first"], m["filter"], m["again"]
                    located, digits = m["located"], m["digits"]
                    print(
                        f"{row['n']:>7} findings, HTML {label}: interactive {m['tti'] / 1000:.2f} s "
                        f"(goto returned after {m['wall']:.2f} s), {m['rows']} rows in the DOM"
                    )
                    print(
                        f"    first search right after load ({FIRST_NEEDLE!r}) {first[0]:.0f} ms "
                        f"(+ next frame {first[1]:.0f} ms), target {TARGET_MS} ms {_verdict(first[1])}: "
                        f"{m['first_shown']}"
                    )
                    print(
                        f"    severity filter {filt[0]:.0f} ms (+ next frame {filt[1]:.0f} ms), "
                        f"target {_verdict(filt[1])}"
                    )
                    print(
                        f"    search again {again[0]:.0f} ms (+ next frame {again[1]:.0f} ms), "
                        f"target {_verdict(again[1])}; for 'json:17' {located[0]:.0f} ms "
                        f"(+ next frame {located[1]:.0f} ms), target {_verdict(located[1])}; "
                        f"for '42' {digits[0]:.0f} ms (+ next frame {digits[1]:.0f} ms), "
                        f"target {_verdict(digits[1])}: {m['shown']}"
                    )
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
