"""Organization-wide scan throughput: many accounts, per-account rate limits, shards.

Run:  python bench/bench_org.py [--accounts 50] [--regions 4] [--configs 10] [--profile 15]

moto (STS, Organizations) in server mode and tests/imagebuilder_server.py with 30 ms
latency and a token bucket per account (--account-rate requests/s). Prints, measured in
the same run: wall time and achieved throughput against the aggregate limit for 10 and
for --accounts accounts (how wall time scales) with the scanner's own CPU time, then
(--profile) where a profiled scan's time went, then the same scan split into 4 shards
run in parallel processes and merged.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")


def setup(accounts: int, regions: int, configs: int, latency: float, account_rate: float):
    import boto3
    from imagebuilder_server import Faults, ImageBuilderServer
    from moto.server import ThreadedMotoServer
    from test_org import _account_of_access_key

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    os.environ.update(
        AWS_ACCESS_KEY_ID="AKIDMANAGEMENT",
        AWS_SECRET_ACCESS_KEY="secret",
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL_STS=moto_url,
        AWS_ENDPOINT_URL_ORGANIZATIONS=moto_url,
        AWS_EC2_METADATA_DISABLED="true",
    )
    org = boto3.client("organizations", region_name="us-east-1")
    org.create_organization(FeatureSet="ALL")
    ids = [
        org.create_account(Email=f"a{i}@example.invalid", AccountName=f"a{i}")["CreateAccountStatus"]["AccountId"]
        for i in range(accounts)
    ]
    server = ImageBuilderServer(Faults(latency=latency, account_rate_limit=account_rate, burst=5, page_size=100))
    server.resolve_account = _account_of_access_key
    for account in ids:
        for region in REGIONS[:regions]:
            for i in range(configs):
                server.add(
                    region,
                    {"name": f"c{i}-{account[-4:]}", "distributions": [{"region": region}], "timeoutMinutes": 360},
                    account=account,
                )
    os.environ["AWS_ENDPOINT_URL_IMAGEBUILDER"] = server.start()
    return moto, server, ids


# Runs ib-audit's main under cProfile, every thread with its own profiler (the scan's
# work is in worker threads), and writes the merged stats to argv[1].
PROFILED = """
import cProfile, pstats, sys, threading
profilers = []
def in_thread(*_):
    sys.setprofile(None)
    profiler = cProfile.Profile()
    profilers.append(profiler)
    profiler.enable()
threading.setprofile(in_thread)
from auditor.cli import main
main_profiler = cProfile.Profile()
main_profiler.runcall(main, sys.argv[2:])
stats = pstats.Stats(main_profiler)
for profiler in profilers:
    profiler.disable()
    stats.add(profiler)
stats.dump_stats(sys.argv[1])
"""


def scan(
    accounts_file: Path, regions: int, out: Path, shard: str | None = None, profile: Path | None = None
) -> subprocess.Popen:
    runner = (
        [sys.executable, "-c", PROFILED, str(profile)] if profile else [str(Path(sys.executable).with_name("ib-audit"))]
    )
    cmd = [
        *runner,
        "scan",
        "--accounts-file",
        str(accounts_file),
        "--role-name",
        "ib-audit",
        "--region",
        ",".join(REGIONS[:regions]),
        "-f",
        f"json={out}",
        "--fail-on",
        "never",
    ]
    if shard:
        cmd += ["--shard", shard]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL)


def where_the_time_goes(profile: Path, top: int) -> None:
    """The scanner's time by where it was spent: its own code, boto3/botocore, the
    network wait (socket reads, sleeps between retries), and the largest functions."""
    import pstats

    stats = pstats.Stats(str(profile))
    total = stats.total_tt
    buckets: dict[str, float] = {}
    for (file, _, name), (_, _, own, _, _) in stats.stats.items():
        if "{method 'recv" in name or "select" in name or "poll" in name or "acquire" in name or "sleep" in name:
            bucket = "waiting (sockets, locks, sleeps)"
        elif "botocore" in file or "boto3" in file or "urllib3" in file:
            bucket = "boto3 / botocore / urllib3 (Python)"
        elif "/auditor/" in file or "/rules/" in file or "/reports/" in file:
            bucket = "ib-audit's own code"
        else:
            bucket = "other (standard library, C calls)"
        buckets[bucket] = buckets.get(bucket, 0.0) + own
    print(f"Where the profiled scan's {total:.1f} s went (own time summed over all threads, per bucket):")
    for bucket, seconds in sorted(buckets.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds:6.1f} s  {seconds / total:4.0%}  {bucket}")
    print(f"Largest functions by own time (top {top}):")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]
    for (file, line, name), (_, calls, own, cumulative, _) in rows:
        print(f"  {own:6.2f} s own {cumulative:6.2f} s cumulative {calls:8d} calls  {Path(file).name}:{line}({name})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--configs", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.03)
    parser.add_argument("--account-rate", type=float, default=5.0)
    parser.add_argument("--profile", type=int, default=0, metavar="TOP", help="profile the full scan once more")
    args = parser.parse_args()
    moto, server, ids = setup(args.accounts, args.regions, args.configs, args.latency, args.account_rate)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = []
            for count in sorted({10, args.accounts}):
                accounts_file = Path(tmp, f"accounts{count}.txt")
                accounts_file.write_text("\n".join(ids[:count]) + "\n")
                before = dict(server.status_counts)
                start = time.perf_counter()
                _, _, usage = os.wait4(scan(accounts_file, args.regions, Path(tmp, f"full{count}.json")).pid, 0)
                wall = time.perf_counter() - start
                cpu = usage.ru_utime + usage.ru_stime
                report = json.loads(Path(tmp, f"full{count}.json").read_text())
                ok = server.status_counts.get(200, 0) - before.get(200, 0)
                throttled = server.status_counts.get(429, 0) - before.get(429, 0)
                aggregate = count * args.account_rate
                rows.append((count, wall, ok / wall, aggregate, throttled, report["summary"]["audited"]))
                summary = report["summary"]
                share = ok / wall / aggregate
                print(
                    f"{count:3d} accounts x {args.regions} regions x {args.configs} configurations: "
                    f"wall {wall:.1f} s, {ok / wall:.0f} successful req/s of an aggregate "
                    f"{aggregate:.0f}/s limit ({share:.0%}), {throttled} throttled, "
                    f"{summary['audited']} audited, {summary['errors']} errors; "
                    f"the scanner's own CPU {cpu:.1f} s ({cpu / wall:.0%} of its wall time)"
                )
            if len(rows) == 2:
                (c1, w1, *_), (c2, w2, *_) = rows
                print(f"wall time grows {w2 / w1:.1f}x for {c2 / c1:.0f}x the accounts")
            accounts_file = Path(tmp, f"accounts{args.accounts}.txt")
            if args.profile:
                profile = Path(tmp, "scan.prof")
                scan(accounts_file, args.regions, Path(tmp, "profiled.json"), profile=profile).wait()
                where_the_time_goes(profile, args.profile)
            start = time.perf_counter()
            procs = [scan(accounts_file, args.regions, Path(tmp, f"shard{k}.json"), f"{k}/4") for k in range(1, 5)]
            for p in procs:
                p.wait()
            subprocess.run(
                [
                    str(Path(sys.executable).with_name("ib-audit")),
                    "merge",
                    *(str(Path(tmp, f"shard{k}.json")) for k in range(1, 5)),
                    "-f",
                    f"json={tmp}/merged.json",
                    "--fail-on",
                    "never",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            wall = time.perf_counter() - start
            merged = json.loads(Path(tmp, "merged.json").read_text())
            full = json.loads(Path(tmp, f"full{args.accounts}.json").read_text())
            same = sorted(t["id"] for t in merged["targets"]) == sorted(t["id"] for t in full["targets"])
            print(
                f"4 shards in parallel + merge: wall {wall:.1f} s ({rows[-1][1] / wall:.1f}x the single process), "
                f"{merged['summary']['audited']} audited, same targets as the unsharded scan: {same}"
            )
    finally:
        server.stop()
        moto.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
