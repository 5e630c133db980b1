"""Organization-wide scan throughput: many accounts, per-account rate limits, shards.

Run:  python bench/bench_org.py [--accounts 50] [--regions 4] [--configs 10] [--baseline REV] [--profile 15]

moto (STS, Organizations) in server mode and tests/imagebuilder_server.py with 30 ms
latency and a token bucket per account (--account-rate requests/s). Prints, measured in
the same run: wall time and achieved throughput against the aggregate limit for 10 and
for --accounts accounts (how wall time scales), where the scanner's CPU went (creating
botocore sessions and clients, making requests, everything else: start-up and ib-audit's
own code) and how many sessions, clients and connections it made; with --baseline, the
same for the ib-audit of git revision REV (its auditor/, rules/ and reports/ run with this
Python and these servers), so before and after come from one run. Then (--profile) where
a profiled scan's CPU went, by function, then the scan split into 4 shards run in
parallel processes and merged.
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


# Runs ib-audit's main (argv[4:]) and writes to argv[2] what its CPU went to: creating botocore
# sessions and clients, making requests (botocore, less ib-audit's body check, which is
# timed apart), start-up, and how many sessions, clients, requests and connections it made.
# Each thread's CPU clock times the call it is in (the outermost of those wrapped), so time
# spent waiting for the network or a lock counts nowhere. argv[1], when not empty, is a
# directory holding another revision's auditor package, imported instead of this one.
# argv[3], when not empty, receives cProfile statistics of every thread, timed by its CPU clock.
INSTRUMENTED = """
import json, resource, sys, threading, time
root, counts_file, profile_file, *args = sys.argv[1:]
if root:
    sys.path.insert(0, root)
import boto3.session, botocore.client, botocore.session, urllib3.connection
import auditor.sources.aws as live

tally = {"sessions": 0, "clients": {}, "client_keys": [], "requests": {}, "connections": 0,
         "cpu": {"sessions": 0.0, "clients": 0.0, "requests": 0.0, "body checks": 0.0}}
lock = threading.Lock()
local = threading.local()

def timed(bucket, fn, count=None, nested=False):
    def wrapper(*a, **kw):
        if count:
            with lock:
                count(*a, **kw)
        inside = getattr(local, "inside", False)
        if inside and not nested:  # counted in the outer call's bucket
            return fn(*a, **kw)
        local.inside, start = True, time.thread_time()
        try:
            return fn(*a, **kw)
        finally:
            local.inside = inside
            with lock:
                tally["cpu"][bucket] += time.thread_time() - start
    return wrapper

def count_session(*a, **kw):
    tally["sessions"] += 1

def count_client(session, service, region_name=None, *a, **kw):
    tally["clients"][service] = tally["clients"].get(service, 0) + 1
    tally["client_keys"].append([id(session), service, region_name])

def count_request(client, operation, params):
    tally["requests"][operation] = tally["requests"].get(operation, 0) + 1

def count_connection(*a, **kw):
    tally["connections"] += 1

Session, Client, Connection = botocore.session.Session, botocore.client.BaseClient, urllib3.connection.HTTPConnection
Session.__init__ = timed("sessions", Session.__init__, count_session)
boto3.session.Session.__init__ = timed("sessions", boto3.session.Session.__init__)
Session.create_client = timed("clients", Session.create_client, count_client)
Client._make_api_call = timed("requests", Client._make_api_call, count_request)
Connection.connect = timed("requests", Connection.connect, count_connection)
if hasattr(live, "check_response_body"):
    live.check_response_body = timed("body checks", live.check_response_body, nested=True)

profilers = []
if profile_file:
    import cProfile, pstats
    def in_thread(*_):
        sys.setprofile(None)
        profiler = cProfile.Profile(time.thread_time)
        profilers.append(profiler)
        profiler.enable()
    threading.setprofile(in_thread)
usage = resource.getrusage(resource.RUSAGE_SELF)
tally["cpu"]["start-up"] = usage.ru_utime + usage.ru_stime
from auditor.cli import main
if profile_file:
    main_profiler = cProfile.Profile(time.thread_time)
    main_profiler.runcall(main, args)
    stats = pstats.Stats(main_profiler)
    for profiler in profilers:
        profiler.disable()
        stats.add(profiler)
    stats.dump_stats(profile_file)
else:
    main(args)
usage = resource.getrusage(resource.RUSAGE_SELF)
tally["cpu"]["total"] = usage.ru_utime + usage.ru_stime
with lock:
    with open(counts_file, "w") as out:
        json.dump(tally, out)
"""


def baseline_tree(revision: str, into: Path) -> Path:
    """Revision's auditor package laid out as installed (rules/ and reports/ inside it)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision, "auditor", "rules", "reports"], check=True, capture_output=True
    ).stdout
    into.mkdir()
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    for package in ("rules", "reports"):
        (into / package).rename(into / "auditor" / package)
    return into


def scan(
    accounts_file: Path,
    regions: int,
    out: Path,
    counts: Path,
    shard: str | None = None,
    profile: Path | None = None,
    root: Path | None = None,
) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-c",
        INSTRUMENTED,
        str(root or ""),
        str(counts),
        str(profile or ""),
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


def where_the_cpu_went(tally: dict, pairs: int) -> str:
    """One paragraph: the scan's CPU by what it was doing, and what it made how often."""
    cpu = tally["cpu"]
    made = sum(tally["clients"].values())
    distinct = len({tuple(key) for key in tally["client_keys"]})
    by_service = ", ".join(f"{service} {n}" for service, n in sorted(tally["clients"].items(), key=lambda kv: -kv[1]))
    requests = sum(tally["requests"].values())
    botocore_requests = cpu["requests"] - cpu["body checks"]
    rest = cpu["total"] - cpu["start-up"] - cpu["sessions"] - cpu["clients"] - cpu["requests"]
    return (
        f"    CPU {cpu['total']:.1f} s: start-up {cpu['start-up']:.1f} s; "
        f"botocore sessions {cpu['sessions']:.1f} s ({tally['sessions']} made); "
        f"botocore clients {cpu['clients']:.1f} s ({made} made, {distinct} distinct session/service/region, "
        f"for {pairs} account/region pairs: {by_service}); "
        f"requests {botocore_requests:.1f} s in botocore/urllib3 ({requests} requests, "
        f"{tally['connections']} connections opened) + {cpu['body checks']:.1f} s ib-audit's body check; "
        f"everything else {rest:.1f} s (ib-audit's own code: scheduling, type checks, rules, report; threads)"
    )


def where_the_time_goes(profile: Path, top: int) -> None:
    """The profiled scan's CPU (each thread's own clock, so waiting counts nowhere) by
    where it was spent: ib-audit's code, boto3/botocore/urllib3, the rest; and the largest
    functions by own and by cumulative CPU."""
    import pstats

    stats = pstats.Stats(str(profile))
    total = stats.total_tt
    buckets: dict[str, float] = {}
    for (file, _, _), (_, _, own, _, _) in stats.stats.items():
        if "botocore" in file or "boto3" in file or "urllib3" in file:
            bucket = "boto3 / botocore / urllib3 (Python)"
        elif "/auditor/" in file or "/rules/" in file or "/reports/" in file:
            bucket = "ib-audit's own code"
        else:
            bucket = "other (standard library, C calls, imports)"
        buckets[bucket] = buckets.get(bucket, 0.0) + own
    print(f"Where the profiled scan's {total:.1f} s of CPU went (own CPU summed over all threads, per bucket):")
    for bucket, seconds in sorted(buckets.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds:6.1f} s  {seconds / total:4.0%}  {bucket}")
    for title, column in (("own", 2), ("cumulative", 3)):
        print(f"Largest functions by {title} CPU (top {top}):")
        rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][column])[:top]
        for (file, line, name), (_, calls, own, cumulative, _) in rows:
            where = f"{Path(file).parent.name}/{Path(file).name}" if file != "~" else "~"
            print(f"  {own:6.2f} s own {cumulative:6.2f} s cumulative {calls:8d} calls  {where}:{line}({name})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--configs", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.03)
    parser.add_argument("--account-rate", type=float, default=5.0)
    parser.add_argument("--baseline", metavar="REV", help="also measure the ib-audit of this git revision")
    parser.add_argument("--profile", type=int, default=0, metavar="TOP", help="profile the full scan once more")
    args = parser.parse_args()
    moto, server, ids = setup(args.accounts, args.regions, args.configs, args.latency, args.account_rate)
    burst = server.faults.burst
    try:
        with tempfile.TemporaryDirectory() as tmp:
            builds: list[tuple[str, Path | None]] = []
            if args.baseline:
                builds.append((f"before ({args.baseline})", baseline_tree(args.baseline, Path(tmp, "baseline"))))
            builds.append(("this checkout", None))
            counts = sorted({10, args.accounts})
            for count in counts:
                Path(tmp, f"accounts{count}.txt").write_text("\n".join(ids[:count]) + "\n")
            results: dict[tuple[str, int], dict] = {}
            # Alternate the builds at each size, so that load from elsewhere on the machine
            # falls on both alike.
            for count in counts:
                for name, root in builds:
                    out, tally_file = Path(tmp, f"full-{count}.json"), Path(tmp, f"tally-{count}.json")
                    before = dict(server.status_counts)
                    start = time.perf_counter()
                    proc = scan(Path(tmp, f"accounts{count}.txt"), args.regions, out, tally_file, root=root)
                    _, _, usage = os.wait4(proc.pid, 0)
                    wall = time.perf_counter() - start
                    report = json.loads(out.read_text())
                    ok = server.status_counts.get(200, 0) - before.get(200, 0)
                    aggregate = count * args.account_rate
                    results[(name, count)] = row = {
                        "wall": wall,
                        "cpu": usage.ru_utime + usage.ru_stime,
                        "ok": ok,
                        "rate": ok / wall,
                        "share": ok / wall / aggregate,
                        "floor": max(ok - burst * count, 0) / aggregate,
                        "throttled": server.status_counts.get(429, 0) - before.get(429, 0),
                        "summary": report["summary"],
                        "tally": json.loads(tally_file.read_text()),
                        "targets": sorted(t["id"] for t in report["targets"]),
                    }
                    summary = row["summary"]
                    print(
                        f"{name}: {count:3d} accounts x {args.regions} regions x {args.configs} configurations: "
                        f"wall {wall:.1f} s, {row['rate']:.0f} successful req/s of an aggregate "
                        f"{aggregate:.0f}/s limit ({row['share']:.0%}; the limit alone allows {row['floor']:.1f} s), "
                        f"{row['throttled']} throttled, {summary['audited']} audited, {summary['errors']} errors; "
                        f"the scanner's CPU {row['cpu']:.1f} s ({row['cpu'] / wall:.0%} of its wall time)"
                    )
                    print(where_the_cpu_went(row["tally"], count * args.regions))
            for name, _ in builds:
                if len(counts) == 2:
                    small, large = results[(name, counts[0])], results[(name, counts[1])]
                    print(
                        f"{name}: wall time grows {large['wall'] / small['wall']:.1f}x "
                        f"for {counts[1] / counts[0]:.0f}x the accounts"
                    )
            if args.baseline:
                old, new = results[(builds[0][0], args.accounts)], results[("this checkout", args.accounts)]
                print(
                    f"{args.accounts} accounts, this checkout against {args.baseline}: "
                    f"wall {old['wall']:.1f} -> {new['wall']:.1f} s ({old['wall'] / new['wall']:.1f}x faster), "
                    f"share of the aggregate limit {old['share']:.0%} -> {new['share']:.0%}, "
                    f"CPU {old['cpu']:.1f} -> {new['cpu']:.1f} s, "
                    f"clients {sum(old['tally']['clients'].values())} -> {sum(new['tally']['clients'].values())}, "
                    f"same targets: {old['targets'] == new['targets']}"
                )
            accounts_file = Path(tmp, f"accounts{args.accounts}.txt")
            if args.profile:
                profile = Path(tmp, "scan.prof")
                out, tally_file = Path(tmp, "profiled.json"), Path(tmp, "profiled.tally")
                scan(accounts_file, args.regions, out, tally_file, profile=profile).wait()
                where_the_time_goes(profile, args.profile)
            start = time.perf_counter()
            procs = [
                scan(accounts_file, args.regions, Path(tmp, f"shard{k}.json"), Path(tmp, f"shard{k}.tally"), f"{k}/4")
                for k in range(1, 5)
            ]
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
            full = results[("this checkout", args.accounts)]
            same = sorted(t["id"] for t in merged["targets"]) == full["targets"]
            print(
                f"4 shards in parallel + merge: wall {wall:.1f} s ({full['wall'] / wall:.1f}x the single process), "
                f"{merged['summary']['audited']} audited, same targets as the unsharded scan: {same}"
            )
    finally:
        server.stop()
        moto.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
