"""Head-to-head on infrastructure as code: ib-audit against Checkov and cfn-lint.

Run:  python bench/bench_iac.py [--configs 1000] [--runs 3] [--write-doc docs/comparison.md]
      python bench/bench_iac.py --skip-peers   (ib-audit and its parse floors only: quicker)

Generates the same distribution configurations as one CloudFormation template and as a
Terraform directory, seeded with known mistakes, and in one run:

- times each tool on them and on a one-resource file (median of --runs; peak RSS of
  the tool's process from wait4);
- counts, per seeded mistake, on how many resources each tool reports something, and
  how many clean resources it flags (false positives);
- times the parse floors, each a process that only parses the same input: the template
  with PyYAML's C loader (CloudFormation's tags kept) in this Python, and with cfn-lint's
  decoder; the Terraform files with python-hcl2 (Checkov's HCL parser). Target: an
  ib-audit scan in at most 2x its format's floor (PyYAML's C loader; python-hcl2).

The peers are installed in a separate venv (default /tmp/ib-audit-peers; python-hcl2 in
/tmp/ib-audit-peers-hcl2) the first time; they are not project dependencies.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KINDS = {
    "compliant": None,
    "public-ami": "AMI launch permission includes 'all'",
    "no-key-on-second-distribution": "second distribution has no KMS key",
    "container-only": None,
    "fast-launch-below-6": "maxParallelLaunches 2 (EC2 needs 6)",
    "disallowed-disk-format": "S3 export format QCOW2 (not VMDK/VHD/RAW)",
}
KEY = "arn:aws:kms:{region}:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def configuration(i: int) -> tuple[str, dict]:
    kind = list(KINDS)[i % len(KINDS)]
    name = f"cfg-{i:04d}"

    def ami(region: str, key: bool = True) -> dict:
        out = {"name": f"{name}-{{{{ imagebuilder:buildDate }}}}", "amiTags": {"owner": "platform"}}
        if key:
            out["kmsKeyId"] = KEY.format(region=region)
        return out

    dists = [
        {"region": "us-east-1", "amiDistributionConfiguration": ami("us-east-1")},
        {"region": "eu-west-1", "amiDistributionConfiguration": ami("eu-west-1")},
    ]
    if kind == "public-ami":
        dists[0]["amiDistributionConfiguration"]["launchPermission"] = {"userGroups": ["all"]}
    elif kind == "no-key-on-second-distribution":
        del dists[1]["amiDistributionConfiguration"]["kmsKeyId"]
    elif kind == "container-only":
        dists = [
            {
                "region": "us-east-1",
                "containerDistributionConfiguration": {
                    "containerTags": ["latest"],
                    "targetRepository": {"service": "ECR", "repositoryName": "app"},
                },
            }
        ]
    elif kind == "fast-launch-below-6":
        dists[0]["fastLaunchConfigurations"] = [
            {"enabled": True, "maxParallelLaunches": 2, "launchTemplate": {"launchTemplateName": "fast"}}
        ]
    elif kind == "disallowed-disk-format":
        dists[0]["s3ExportConfiguration"] = {
            "roleName": "vmimport",
            "diskImageFormat": "QCOW2",
            "s3Bucket": "exports-bucket",
        }
    return kind, {"name": name, "distributions": dists, "tags": {"owner": "platform"}}


def write_inputs(directory: Path, count: int) -> dict[str, str]:
    sys.path.insert(0, str(REPO / "tests"))
    from iac_writer import to_cloudformation, to_terraform

    kinds: dict[str, str] = {}
    # The images are built in us-east-1, as a team declares in its config: without it the
    # copy to eu-west-1 could be the own region, and a missing key there is "could not
    # verify" rather than a finding.
    (directory / ".ib-audit.toml").write_text('owner-region = "us-east-1"\n')
    cfn_parts = ["AWSTemplateFormatVersion: '2010-09-09'", "Resources:"]
    tf_dir = directory / "terraform"
    tf_dir.mkdir()
    tf_files: dict[int, list[str]] = {}
    for i in range(count):
        kind, config = configuration(i)
        logical = f"Dist{i:04d}"
        kinds[logical] = kind
        kinds[f"aws_imagebuilder_distribution_configuration.r{i:04d}"] = kind
        text, _ = to_cloudformation(config, logical)
        cfn_parts.extend(text.splitlines()[2:])  # drop the per-template header
        tf_text, _ = to_terraform(config, f"r{i:04d}")
        tf_files.setdefault(i // 10, []).append(tf_text)
    (directory / "template.yaml").write_text("\n".join(cfn_parts) + "\n")
    for index, texts in tf_files.items():
        (tf_dir / f"images_{index:03d}.tf").write_text("\n".join(texts))
    _, one = configuration(1)
    (directory / "one.yaml").write_text(to_cloudformation(one, "Dist0001")[0])
    (directory / "one_tf").mkdir()
    (directory / "one_tf" / "main.tf").write_text(to_terraform(one, "r0001")[0])
    return kinds


def run_measured(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, int, str, float]:
    """Wall seconds, peak RSS in MB of the process tree's main process, stdout, and CPU
    seconds (user + system, the process and the children it waited for).

    On a shared machine wall time swings with other load; CPU time does not, so both
    are reported.
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.DEVNULL, env=env)
        _, _, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode(errors="replace")
    return wall, usage.ru_maxrss // 1024, text, usage.ru_utime + usage.ru_stime


# Parse floors: each reads its input and parses it, nothing else.
CFN_YAML_FLOOR = """
import sys, yaml
class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    pass
Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # !Ref, !Sub...: parsed, not used
yaml.load(open(sys.argv[1], encoding="utf-8").read(), Loader=Loader)
"""
CFN_LINT_FLOOR = "import sys; from cfnlint.decode import decode; decode(sys.argv[1])"
TF_HCL2_FLOOR = """
import sys, pathlib, hcl2
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.tf")):
    hcl2.loads(path.read_text())
"""


def measure_floors(
    work: Path,
    peers: Path,
    hcl2: Path,
    runs: int,
    ours: dict[str, list[str]],
    env: dict[str, str],
    skip_peers: bool = False,
) -> dict[str, tuple[float, float, float]]:
    """Per parse floor (see the module docstring): its median wall time, and the medians
    of ib-audit's wall and CPU time over the floor's, each pair run back to back
    (``ours``: the ib-audit command of each format), so a change in the machine's speed
    between the two does not show as a ratio. On a machine shared with other work the
    CPU ratio moves less: a process preempted for a while loses wall time, not CPU time."""
    commands = {
        "CloudFormation: PyYAML C loader": [sys.executable, "-c", CFN_YAML_FLOOR, "template.yaml"],
        "CloudFormation: cfn-lint decoder": [str(peers / "python"), "-c", CFN_LINT_FLOOR, "template.yaml"],
        "Terraform: python-hcl2": [str(hcl2 / "python"), "-c", TF_HCL2_FLOOR, "terraform"],
        "Terraform: bc-python-hcl2 (Checkov's)": [str(peers / "python"), "-c", TF_HCL2_FLOOR, "terraform"],
    }
    if skip_peers:  # the floors in the target only
        commands = {name: cmd for name, cmd in commands.items() if "cfn-lint" not in name and "Checkov" not in name}
    measured = {}
    for name, cmd in commands.items():
        floors, ratios, cpu_ratios = [], [], []
        for _ in range(runs):
            floor, _, _, floor_cpu = run_measured(cmd, work)
            wall, _, _, cpu = run_measured(ours[name.split(":")[0]], work, env)
            floors.append(floor)
            ratios.append(wall / floor)
            cpu_ratios.append(cpu / floor_cpu)
        measured[name] = (statistics.median(floors), statistics.median(ratios), statistics.median(cpu_ratios))
    return measured


def ensure_peers(venv: Path) -> Path:
    if not (venv / "bin" / "checkov").exists() or not (venv / "bin" / "cfn-lint").exists():
        print(f"installing checkov and cfn-lint into {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "checkov", "cfn-lint"], check=True)
    return venv / "bin"


def ensure_hcl2(venv: Path) -> Path:
    """python-hcl2 in a venv of its own: Checkov's fork (bc-python-hcl2) has the same module name."""
    if (
        not (venv / "bin" / "python").exists()
        or subprocess.run([str(venv / "bin" / "python"), "-c", "import hcl2"]).returncode
    ):
        print(f"installing python-hcl2 into {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "python-hcl2"], check=True)
    return venv / "bin"


def flagged_ib_audit(output: str) -> dict[str, set[str]]:
    report = json.loads(output)
    out: dict[str, set[str]] = {}
    for f in report["findings"]:
        resource = f["target"].split("#", 1)[1]
        out.setdefault(resource, set()).add(f["rule_id"])
    return out


def flagged_checkov(output: str) -> dict[str, set[str]]:
    data = json.loads(output) if output.strip() else []
    reports = data if isinstance(data, list) else [data]
    out: dict[str, set[str]] = {}
    for report in reports:
        for check in report.get("results", {}).get("failed_checks", []):
            resource = check["resource"]
            if "ImageBuilder" not in resource and "imagebuilder" not in resource:
                continue
            name = resource.split(".", 1)[1] if resource.startswith("AWS::") else resource
            out.setdefault(name, set()).add(check["check_id"])
    return out


def flagged_cfn_lint(output: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for match in json.loads(output or "[]"):
        path = match.get("Location", {}).get("Path") or []
        if len(path) >= 2 and path[0] == "Resources":
            out.setdefault(str(path[1]), set()).add(match["Rule"]["Id"])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peers", type=Path, default=Path("/tmp/ib-audit-peers"))
    parser.add_argument("--write-doc", type=Path)
    parser.add_argument(
        "--skip-peers", action="store_true", help="time ib-audit and its parse floors only, not Checkov and cfn-lint"
    )
    args = parser.parse_args()
    if args.skip_peers and args.write_doc:
        parser.error("--write-doc needs the peers measured in the same run: drop --skip-peers")
    exe = Path(sys.executable).with_name("ib-audit")
    ib = str(exe) if exe.exists() else shutil.which("ib-audit")
    peers = args.peers / "bin" if args.skip_peers else ensure_peers(args.peers)
    hcl2 = ensure_hcl2(args.peers.with_name(args.peers.name + "-hcl2"))

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        kinds = write_inputs(work, args.configs)
        # ib-audit runs byte-compiled, as an installed package does (pip compiles it at
        # install, as it compiled the peers): a checkout installed in editable mode, under
        # PYTHONDONTWRITEBYTECODE, would otherwise compile every module on every run. The
        # cache lives in the temporary directory and is filled by the warm-up run below.
        ib_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        ib_env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        jobs = {
            ("CloudFormation", "ib-audit"): (
                [ib, "scan", "template.yaml", "-f", "json", "--fail-on", "never"],
                flagged_ib_audit,
            ),
            ("CloudFormation", "checkov"): (
                [
                    str(peers / "checkov"),
                    "-f",
                    "template.yaml",
                    "--framework",
                    "cloudformation",
                    "-o",
                    "json",
                    "--quiet",
                ],
                flagged_checkov,
            ),
            ("CloudFormation", "cfn-lint"): (
                [str(peers / "cfn-lint"), "-f", "json", "template.yaml"],
                flagged_cfn_lint,
            ),
            ("Terraform", "ib-audit"): (
                [ib, "scan", "terraform", "-f", "json", "--fail-on", "never"],
                flagged_ib_audit,
            ),
            ("Terraform", "checkov"): (
                [str(peers / "checkov"), "-d", "terraform", "--framework", "terraform", "-o", "json", "--quiet"],
                flagged_checkov,
            ),
        }
        one_file = {
            ("CloudFormation", "ib-audit"): [ib, "scan", "one.yaml", "-f", "json", "--fail-on", "never"],
            ("CloudFormation", "checkov"): [
                str(peers / "checkov"),
                "-f",
                "one.yaml",
                "--framework",
                "cloudformation",
                "-o",
                "json",
                "--quiet",
            ],
            ("CloudFormation", "cfn-lint"): [str(peers / "cfn-lint"), "-f", "json", "one.yaml"],
            ("Terraform", "ib-audit"): [ib, "scan", "one_tf", "-f", "json", "--fail-on", "never"],
            ("Terraform", "checkov"): [
                str(peers / "checkov"),
                "-d",
                "one_tf",
                "--framework",
                "terraform",
                "-o",
                "json",
                "--quiet",
            ],
        }
        if args.skip_peers:
            jobs = {key: job for key, job in jobs.items() if key[1] == "ib-audit"}
        rows = []
        for key, (cmd, parse) in jobs.items():
            env = ib_env if key[1] == "ib-audit" else None
            run_measured(cmd, work, env)  # warm-up, untimed: every tool reads its input from a warm cache
            walls, peaks, cpus, output = [], [], [], ""
            for _ in range(args.runs):
                wall, peak, output, cpu = run_measured(cmd, work, env)
                walls.append(wall)
                peaks.append(peak)
                cpus.append(cpu)
            one = statistics.median(run_measured(one_file[key], work, env)[0] for _ in range(args.runs))
            flagged = parse(output)
            detection = {}
            for kind in KINDS:
                resources = [r for r, k in kinds.items() if k == kind and (("." in r) == (key[0] == "Terraform"))]
                detection[kind] = (sum(1 for r in resources if r in flagged), len(resources))
            rows.append(
                {
                    "format": key[0],
                    "tool": key[1],
                    "wall": statistics.median(walls),
                    "cpu": statistics.median(cpus),
                    "peak_mb": max(peaks),
                    "one_file": one,
                    "detection": detection,
                }
            )
            print(
                f"{key[0]:<14} {key[1]:<9} {statistics.median(walls):7.2f} s  cpu {statistics.median(cpus):6.2f} s  "
                f"peak {max(peaks):5d} MB  one file {one:5.2f} s",
                file=sys.stderr,
            )

        ours = {fmt: cmd for (fmt, tool), (cmd, _) in jobs.items() if tool == "ib-audit"}
        floors = measure_floors(work, peers, hcl2, args.runs, ours, ib_env, args.skip_peers)

    lines = render(rows, args.configs, args.runs, floors)
    print("\n".join(lines))
    if args.write_doc:
        args.write_doc.write_text("\n".join(lines) + "\n")
    return 0


def render(rows: list[dict], configs: int, runs: int, floors: dict[str, tuple[float, float, float]]) -> list[str]:
    lines = [
        "# ib-audit compared with Checkov and cfn-lint",
        "",
        "Generated by `python bench/bench_iac.py --write-doc docs/comparison.md`: "
        f"{configs} distribution configurations as one CloudFormation template and as a "
        f"Terraform directory, median of {runs} runs (after one untimed warm-up run) on a 2-core machine.",
        "Every tool runs byte-compiled, as pip installs it (ib-audit's bytecode is cached in the run's",
        "temporary directory).",
        "Each configuration has two distributions (us-east-1, eu-west-1); one in six is each of the kinds below.",
        'ib-audit reads `owner-region = "us-east-1"` from `.ib-audit.toml`, as a team that builds there declares.',
        "",
        "## Speed",
        "",
        "| format | tool | wall (s) | vs ib-audit | CPU (s) | CPU vs ib-audit | peak RSS (MB) | one-resource (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    base = {r["format"]: r for r in rows if r["tool"] == "ib-audit"}
    for r in rows:
        ratio = r["wall"] / base[r["format"]]["wall"]
        cpu_ratio = r["cpu"] / base[r["format"]]["cpu"]
        lines.append(
            f"| {r['format']} | {r['tool']} | {r['wall']:.2f} | {ratio:.1f}x | {r['cpu']:.2f} | {cpu_ratio:.1f}x "
            f"| {r['peak_mb']} | {r['one_file']:.2f} |"
        )
    lines += [
        "",
        "## Against the parse floor",
        "",
        "A process that only parses the same input (median wall time), and ib-audit's time over it: the median",
        "of pairs run back to back, in wall time and in CPU time (user + system). Target: ib-audit in at most 2x",
        "the floor of its format (PyYAML's C loader for CloudFormation, python-hcl2 for Terraform).",
        "",
        "| floor | wall (s) | ib-audit / floor | ib-audit / floor, CPU |",
        "|---|---:|---:|---:|",
    ]
    for name, (wall, ratio, cpu_ratio) in floors.items():
        lines.append(f"| {name} | {wall:.2f} | {ratio:.2f}x | {cpu_ratio:.2f}x |")
    lines += [
        "",
        "## What each tool reports, per seeded kind",
        "",
        "Resources on which the tool reported anything, out of the resources of that kind. The compliant and",
        "container-only kinds are clean: anything reported there is a false positive.",
        "",
        "| format | tool | " + " | ".join(KINDS) + " |",
        "|---|---|" + "---:|" * len(KINDS),
    ]
    for r in rows:
        cells = [f"{hit}/{total}" for hit, total in r["detection"].values()]
        lines.append(f"| {r['format']} | {r['tool']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Seeded kinds: " + "; ".join(f"**{k}**: {v}" for k, v in KINDS.items() if v) + ".",
        "",
        "Checkov's only check for this resource (CKV_AWS_199) is Terraform-only, reads the first `distribution`",
        "block only, and fires on container-only configurations. cfn-lint validates the template against the",
        "CloudFormation schema, so it sees no security property. In CloudFormation the S3 export cannot be written",
        "at all (the resource schema has no S3ExportConfiguration): cfn-lint reports the extra property (E3002)",
        "and ib-audit reports it as IBD016 without evaluating the export.",
    ]
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
