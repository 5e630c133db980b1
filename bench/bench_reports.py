"""Report writing speed: SARIF against the JSON report, for the same scan result.

Run:  python bench/bench_reports.py [--findings 16000] [--repeat 5]

Generates configurations (bench_scan's generator) until the scan has about --findings
findings, scans them once in this process, then writes the JSON and the SARIF report of
that one result to files, alternating, --repeat times each. Prints wall and CPU time per
report (best and median), SARIF's ratio to JSON measured in the same run (best against
best, and the median of each SARIF write against the JSON write before it), and the sizes.
With --profile N, also the N functions the SARIF writer spends most time in (cProfile).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))


def scan_result(directory: Path):
    from auditor.config import load_settings
    from auditor.engine import Audit, configure_rules
    from auditor.plugins import PluginHost
    from auditor.snippets import SnippetMaker
    from auditor.sources import load_paths

    host = PluginHost()
    settings = load_settings(None, [r for _, r in host.rules()], start=directory)
    run = Audit(host, configure_rules(host, settings), settings)
    snippets = SnippetMaker(settings.max_file_size_mb * 1_000_000)
    loaded = load_paths(
        [str(directory)],
        host.file_sources(),
        settings.max_file_size_mb * 1_000_000,
        on_file=lambda targets, display, text: run.add_file(targets, display, text, snippets=snippets),
    )
    return run.finish(loaded.targets, loaded.errors, scanned=[str(directory)]), host.reporters()


def timed_write(reporter, result, path: Path) -> tuple[float, float]:
    from auditor.atomic import open_atomic

    cpu, wall = time.process_time(), time.perf_counter()
    with open_atomic(path) as handle:
        reporter.write(result, handle)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    import bench_scan

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--findings", type=int, default=16_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile one SARIF write")
    args = parser.parse_args()
    # bench_scan's configurations carry about 0.96 findings each.
    configs = max(100, round(args.findings / 0.96 / 100) * 100)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp, "configs")
        data.mkdir()
        bench_scan.generate(data, configs, max(1, configs // 100))
        cwd = os.getcwd()
        os.chdir(tmp)  # paths in the reports relative to the scanned tree, as in CI
        try:
            result, reporters = scan_result(Path("configs"))
            print(f"{configs} configurations, {len(result.findings)} findings")
            times: dict[str, list[tuple[float, float]]] = {"json": [], "sarif": []}
            for _ in range(args.repeat):
                for name in times:  # alternating, so both see the same machine
                    times[name].append(timed_write(reporters[name], result, Path(tmp, f"out.{name}")))
            for name, samples in times.items():
                walls, cpus = [w for w, _ in samples], [c for _, c in samples]
                size = Path(tmp, f"out.{name}").stat().st_size
                print(
                    f"  {name:<5} wall best {min(walls):.3f} s, median {statistics.median(walls):.3f} s; "
                    f"cpu best {min(cpus):.3f} s; {size / 1e6:.1f} MB"
                )
            ratio = min(w for w, _ in times["sarif"]) / min(w for w, _ in times["json"])
            cpu_ratio = min(c for _, c in times["sarif"]) / min(c for _, c in times["json"])
            # Each SARIF write against the JSON write just before it: on a shared machine
            # a busy moment slows both of a pair, where it can skew either best time.
            pairs = [s / j for (s, _), (j, _) in zip(times["sarif"], times["json"], strict=True)]
            verdict = "met" if ratio <= 1.3 else "MISSED"
            print(
                f"SARIF / JSON: wall {ratio:.2f}x, cpu {cpu_ratio:.2f}x, median of pairs "
                f"{statistics.median(pairs):.2f}x (target at most 1.3x: {verdict})"
            )
            if args.profile:
                import cProfile
                import pstats

                profile = cProfile.Profile()
                profile.runcall(timed_write, reporters["sarif"], result, Path(tmp, "out.sarif"))
                pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)
        finally:
            os.chdir(cwd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
