"""Offline scan speed: 10,000 configurations in 100 files, and a one-file scan.

Run:  python bench/bench_scan.py [--configs 10000] [--files 100] [--repeat 3] [--large 100000]

Prints, all measured in this run:
- full scan to JSON through the real CLI (subprocess): wall time, configurations/s,
  peak RSS, and its ratio to the floor: a process of the same Python that reads and
  ``json.loads`` the same files (target: at most 8x);
- with ``--large N``: the same scan in one process of N configurations (100 per file, like the first),
  run once: time per configuration against the first scan's (target: at most 15% more:
  the scan must not grow faster than the estate; less is start-up spread wider) and
  peak RSS (target: under 600 MB);
- parsing plus locating every finding's value, ours (stdlib json + a lazy locator on
  the C scanner) against the json-source-map library and plain json.loads;
- a one-file scan's wall time against bare interpreter start-up (target: at most 5x),
  and the top imports from ``python -X importtime``;
- whether boto3/botocore were imported (they must not be on this path).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).with_name("ib-audit")
REGIONS = ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "ap-northeast-1"]


def make_config(rng: random.Random, n: int) -> dict:
    """A realistic configuration; about a third carry a mistake some rule reports."""
    dists = []
    for region in rng.sample(REGIONS, rng.randint(1, 4)):
        ami = {
            "name": f"golden-{n}-{{{{ imagebuilder:buildDate }}}}",
            "description": "Hardened baseline built by Image Builder",
            "amiTags": {"owner": "platform", "cost-center": f"cc-{n % 97}"},
            "kmsKeyId": f"arn:aws:kms:{region}:111122223333:key/1234abcd-12ab-34cd-56ef-{n:012d}",
            "targetAccountIds": ["444455556666"],
            "launchPermission": {"userIds": ["444455556666", "777788889999"]},
        }
        roll = rng.random()
        if roll < 0.1:
            del ami["kmsKeyId"]
        elif roll < 0.15:
            ami["launchPermission"]["userGroups"] = ["all"]
        elif roll < 0.25:
            ami["name"] = f"golden-{n}"
        dist = {"region": region, "amiDistributionConfiguration": ami}
        if rng.random() < 0.1:
            dist["fastLaunchConfigurations"] = [
                {
                    "enabled": True,
                    "maxParallelLaunches": rng.choice([2, 6, 10]),
                    "snapshotConfiguration": {"targetResourceCount": 5},
                }
            ]
        dists.append(dist)
    return {
        "distributionConfiguration": {
            "arn": f"arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/cfg-{n}",
            "name": f"cfg-{n}",
            "description": "Generated for the benchmark",
            "distributions": dists,
            "timeoutMinutes": 360,
            "dateCreated": "2026-01-01T00:00:00.000Z",
            "tags": {"owner": "platform"},
        }
    }


def generate(directory: Path, configs: int, files: int) -> int:
    rng = random.Random(42)
    per_file = configs // files
    total_bytes = 0
    for f in range(files):
        docs = [make_config(rng, f * per_file + i) for i in range(per_file)]
        text = json.dumps(docs, indent=2)
        (directory / f"configs-{f:03}.json").write_text(text)
        total_bytes += len(text)
    return total_bytes


def timed(cmd: list[str]) -> tuple[float, int, subprocess.CompletedProcess, float]:
    """Wall time, peak RSS in KB, the outcome, and CPU seconds (user + system) of the
    process and every worker it waited for (from wait4: the peak is its own)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(cmd, stdout=out, stderr=err, env=ENV)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        proc = subprocess.CompletedProcess(cmd, child.returncode, out.read().decode(), err.read().decode())
    return wall, usage.ru_maxrss, proc, usage.ru_utime + usage.ru_stime


# Installed packages carry compiled bytecode; a checkout may not (PYTHONDONTWRITEBYTECODE,
# edited sources). The measured processes may write it, and a warm-up run does, so no
# figure includes compiling the sources.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


# The floor: read and json.loads every file, in a process of the same Python.
FLOOR = """
import json, sys
from pathlib import Path
for path in sorted(Path(sys.argv[1]).glob("*.json")):
    json.loads(path.read_text())
"""


def scan_once(exe: str, data: Path, out: Path, jobs: str = "auto") -> tuple[float, int, float]:
    wall, peak, proc, cpu = timed([exe, "scan", str(data), "-f", f"json={out}", "--fail-on", "never", "--jobs", jobs])
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return wall, peak, cpu


def bench_positions(directory: Path, report: dict, repeat: int) -> None:
    """Parse every file and locate every finding's value: ours lazily, the others eagerly."""
    from json_source_map import calculate

    from auditor.sources.jsonpos import loads_with_spans

    wanted: dict[str, list[str]] = {}
    for f in report["findings"]:
        file, _, element = f["target"].partition("#")
        wanted.setdefault(Path(file).name, []).append(f"{element}/distributionConfiguration{f['path']}")
    texts = [(p.read_text(), wanted.get(p.name, [])) for p in sorted(directory.glob("*.json"))]

    def ours(text: str, pointers: list[str]) -> None:
        _, spans = loads_with_spans(text)
        for pointer in pointers:
            spans.get(pointer)

    def best(fn) -> float:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            for text, pointers in texts:
                fn(text, pointers)
            times.append(time.perf_counter() - start)
        return min(times)

    mine = best(ours)
    library = best(lambda text, _: calculate(text))
    plain = best(lambda text, _: json.loads(text))
    located = sum(len(p) for _, p in texts)
    print(f"\nParse all files and locate the {located} findings' values (best of {repeat}):")
    print(f"  ib-audit (json + lazy C-scanner locator): {mine:.3f} s")
    print(f"  json-source-map library (maps every value): {library:.3f} s   ({library / mine:.1f}x ours)")
    print(
        f"  json.loads, no positions at all:           {plain:.3f} s   (ours costs {mine / plain:.1f}x plain parsing)"
    )


def parallel_jobs() -> int:
    from auditor.parallel import auto_jobs

    return auto_jobs()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--large", type=int, default=0, help="also scan this many configurations once")
    args = parser.parse_args()
    exe = str(EXE) if EXE.exists() else shutil.which("ib-audit")
    if not exe:
        print("ib-audit is not installed in this interpreter's environment", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp, "configs")
        data.mkdir()
        size = generate(data, args.configs, args.files)
        print(f"Generated {args.configs} configurations in {args.files} files ({size / 1e6:.1f} MB)")

        scan_once(exe, data, Path(tmp, "warm.json"))  # compiles bytecode, warms the page cache
        runs: dict[str, list[tuple[float, int, float]]] = {"1": [], "auto": []}
        floors = []
        ratios: dict[str, list[float]] = {"1": [], "auto": []}
        for _ in range(args.repeat):  # alternating, each scan paired with a floor run beside it
            for jobs, measured in runs.items():
                measured.append(scan_once(exe, data, Path(tmp, f"out-{jobs}.json"), jobs))
                floors.append(timed([sys.executable, "-c", FLOOR, str(data)])[0])
                ratios[jobs].append(measured[-1][0] / floors[-1])
        report = json.loads(Path(tmp, "out-1.json").read_text())
        assert report["summary"]["audited"] == args.configs, report["summary"]
        assert Path(tmp, "out-auto.json").read_bytes() == Path(tmp, "out-1.json").read_bytes()
        floor = min(floors)
        print(f"\nfloor (read + json.loads the same files, same Python): {floor:.2f} s")
        print(f"Full scan to JSON via the CLI, {len(report['findings'])} findings (best of {args.repeat}):")
        for jobs, measured in runs.items():
            walls = [m[0] for m in measured]
            best = min(walls)
            # The ratio of each scan to the floor run right after it, median of the pairs:
            # the floor is a short process, and its best alone swings more than the scan.
            ratio = statistics.median(ratios[jobs])
            label = "one process (--jobs 1)" if jobs == "1" else f"--jobs auto ({parallel_jobs()} processes)"
            print(
                f"  {label}: wall {best:.2f} s (median {statistics.median(walls):.2f}), "
                f"{args.configs / best:,.0f} configurations/s, CPU {min(m[2] for m in measured):.2f} s, "
                f"peak RSS {max(m[1] for m in measured) / 1024:.0f} MB; scan / floor {ratio:.1f}x "
                f"(median of {args.repeat} pairs; best / best {best / floor:.1f}x; "
                f"target at most 8x: {'met' if ratio <= 8 else 'MISSED'})"
            )
        best = min(m[0] for m in runs["1"])

        if args.large:
            big = Path(tmp, "large")
            big.mkdir()
            generate(big, args.large, max(1, args.large // (args.configs // args.files)))
            wall, peak, _ = scan_once(exe, big, Path(tmp, "large.json"), "1")
            shutil.rmtree(big)
            per_small, per_large = best / args.configs, wall / args.large
            growth = per_large / per_small - 1
            print(f"\n{args.large} configurations, scanned once:")
            print(
                f"  wall {wall:.2f} s, {per_large * 1e6:.0f} us per configuration against {per_small * 1e6:.0f} us "
                f"at {args.configs} ({growth:+.0%}; target at most 15% more: {'met' if growth <= 0.15 else 'MISSED'})"
            )
            print(f"  peak RSS {peak / 1024:.0f} MB (target under 600 MB: {'met' if peak / 1024 < 600 else 'MISSED'})")

        bench_positions(data, report, args.repeat)

        one = str(REPO / "examples" / "public-ami.json")
        scan_walls = [timed([exe, "scan", one, "-f", "json=/dev/null"])[0] for _ in range(6)][1:]
        bare = [timed([sys.executable, "-c", "pass"])[0] for _ in range(5)]
        print("\nOne-file scan (best of 5):")
        ratio = min(scan_walls) / min(bare)
        print(
            f"  ib-audit scan: {min(scan_walls):.3f} s; bare python start-up (python -c pass): {min(bare):.3f} s "
            f"({ratio:.1f}x; target at most 5x: {'met' if ratio <= 5 else 'MISSED'})"
        )

        proc = subprocess.run(
            [
                sys.executable,
                "-X",
                "importtime",
                "-c",
                f"from auditor.cli import main; main(['scan', {one!r}, '-f', 'json=/dev/null'])",
            ],
            capture_output=True,
            text=True,
        )
        rows = []
        for line in proc.stderr.splitlines():
            if line.startswith("import time:") and "|" in line and "self" not in line:
                _, cumulative, name = line[len("import time:") :].split("|")
                rows.append((int(cumulative), name.rstrip()))
        # A nested import is indented under its parent; only the outermost add up.
        top_level = [(c, n.strip()) for c, n in rows if n.startswith(" ") and not n.startswith("  ")]
        total = sum(c for c, _ in top_level)
        print(f"\npython -X importtime, one-file scan: {total / 1000:.0f} ms of imports; largest top-level:")
        for cumulative, name in sorted(top_level, reverse=True)[:8]:
            print(f"  {cumulative / 1000:7.1f} ms  {name}")
        aws = sorted({n.strip().split(".")[0] for _, n in rows if n.strip().split(".")[0] in ("boto3", "botocore")})
        print(f"  boto3/botocore imported: {aws or 'no'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
