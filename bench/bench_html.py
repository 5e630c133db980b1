"""HTML report at scale: size, render time, and how it behaves in Chromium.

Run:  python bench/bench_html.py [--configs 10000]

Generates the bench_scan configurations (about 12,000 findings for 10,000
configurations), writes the HTML report through the CLI, then opens it in Debian's
headless Chromium and times load, a severity filter and a text search. Prints the
JSON report's time and size from the same scan as the comparison point.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scan import EXE, generate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=10_000)
    args = parser.parse_args()
    exe = str(EXE) if EXE.exists() else shutil.which("ib-audit")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp, "configs")
        data.mkdir()
        generate(data, args.configs, 100)
        timings = {}
        for fmt in ("json", "html"):
            out = Path(tmp, f"report.{fmt}")
            start = time.perf_counter()
            subprocess.run([exe, "scan", str(data), "-f", f"{fmt}={out}", "--fail-on", "never"], check=True)
            timings[fmt] = (time.perf_counter() - start, out.stat().st_size)
        for fmt, (wall, size) in timings.items():
            print(f"scan + {fmt} report: {wall:.2f} s, {size / 1e6:.1f} MB")
        print(
            f"HTML costs {timings['html'][0] / timings['json'][0]:.2f}x the JSON run's time, "
            f"{timings['html'][1] / timings['json'][1]:.2f}x its size"
        )

        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            start = time.perf_counter()
            page.goto(Path(tmp, "report.html").as_uri(), wait_until="load")
            load = time.perf_counter() - start
            rows = page.locator("tr.finding").count()
            filt = page.evaluate(
                """() => { const t = performance.now();
                   const box = document.querySelector("input[value=medium]"); box.click();
                   return performance.now() - t; }"""
            )
            search = page.evaluate(
                """() => { const t = performance.now(); const s = document.getElementById("text-filter");
                   s.value = "cfg-42"; s.dispatchEvent(new Event("input", {bubbles: true}));
                   return performance.now() - t; }"""
            )
            shown = page.locator("#shown").inner_text()
            browser.close()
        print(
            f"Chromium: {rows} rows, load {load:.2f} s, severity filter {filt:.0f} ms, "
            f"text search {search:.0f} ms ({shown})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
