"""The ``ib-audit`` command line."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from auditor import __version__
from auditor.atomic import open_atomic, same_file_key
from auditor.config import (
    RuleSelection,
    Settings,
    discovery_start,
    load_settings,
    parse_fail_on,
    retired_notices,
    unknown_selectors,
)
from auditor.engine import Audit, configure_rules
from auditor.model import AuditResult, InputError, Severity
from auditor.plugins import PluginHost
from auditor.reporting import ReportError, log_line, log_safe
from auditor.snippets import SnippetMaker, attach_snippets
from auditor.sources import inputs, load_inputs

log = logging.getLogger("ib_audit")

EPILOG = """exit codes: 0 no finding at or above --fail-on; 1 findings at or above it;
2 usage or config error, or an input could not be read (the report still lists
everything that was obtained)."""


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, with the terminal width looked up once.

    argparse builds a formatter for every argument added, and each asks
    ``shutil.get_terminal_size`` (importing shutil, with bz2 and lzma, at start-up).
    The width is found the way shutil finds it: ``COLUMNS``, else the terminal, else 80.
    """

    _columns: int | None = None

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width=None) -> None:
        if width is None:
            width = _HelpFormatter._terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)

    @staticmethod
    def _terminal_columns() -> int:
        if _HelpFormatter._columns is None:
            try:
                columns = int(os.environ["COLUMNS"])
            except (KeyError, ValueError):
                columns = 0
            if columns <= 0:
                try:
                    columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
                except (AttributeError, ValueError, OSError):
                    columns = 0
            _HelpFormatter._columns = columns or 80
        return _HelpFormatter._columns


def build_parser() -> argparse.ArgumentParser:
    _HelpFormatter._columns = None  # a new run may have another terminal
    parser = argparse.ArgumentParser(
        formatter_class=_HelpFormatter,
        prog="ib-audit",
        description="Audit EC2 Image Builder distribution configurations for security and compliance.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"ib-audit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    scan = sub.add_parser("scan", help="audit files and directories", epilog=EPILOG, formatter_class=_HelpFormatter)
    scan.add_argument("paths", nargs="*", metavar="PATH", help="files or directories (default: .)")
    live = scan.add_argument_group("live scan (boto3; standard credential chain and AWS_* variables)")
    live.add_argument("--aws", action="store_true", help="audit the configurations deployed in AWS")
    live.add_argument(
        "--region", action="append", metavar="R", help="region to scan, repeatable; 'all' for every region"
    )
    live.add_argument("--arn", action="append", metavar="ARN", help="scan just this configuration (repeatable)")
    live.add_argument("--profile", metavar="P", help="AWS profile to use")
    live.add_argument("--endpoint-url", metavar="URL", help="Image Builder endpoint (default: AWS's)")
    live.add_argument(
        "--security-hub",
        action="store_true",
        help="send the findings to AWS Security Hub in each configuration's account and region; archive fixed ones",
    )
    live.add_argument("--max-workers", type=int, default=16, metavar="N", help="concurrent API calls (default: 16)")
    live.add_argument(
        "--call-deadline",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds one API call may take in all, retries and slow answers included (default: 120)",
    )
    live.add_argument(
        "--aws-context",
        action="store_true",
        help="files: run the account-context checks with the credentials of the account they deploy into",
    )
    live.add_argument(
        "--no-aws-context",
        action="store_true",
        help="live scans: skip the account-context checks (KMS keys, roles, block public access...)",
    )
    live.add_argument(
        "--snapshot-dir",
        metavar="DIR",
        help="write each fetched configuration to DIR/<account>/<region>/<name>.json; findings then point at its lines",
    )
    org = scan.add_argument_group("many accounts (assume a role in each)")
    org.add_argument("--role-name", metavar="NAME", help="role to assume in each account")
    org.add_argument("--accounts", action="append", metavar="ID,...", help="account ids (repeatable, comma-separated)")
    org.add_argument("--accounts-file", metavar="FILE", help="account ids, one per line (# comments)")
    org.add_argument("--organization", action="store_true", help="every active account of the AWS Organization")
    org.add_argument("--external-id", metavar="ID", help="external id for the role")
    org.add_argument("--role-session-name", default="ib-audit", metavar="NAME", help="session name (default: ib-audit)")
    org.add_argument("--session-duration", type=int, default=3600, metavar="S", help="role session seconds (refreshed)")
    org.add_argument(
        "--max-workers-per-account", type=int, default=4, metavar="N", help="per-account bound (default 4)"
    )
    org.add_argument("--shard", metavar="K/N", help="scan slice K of N of the (account, region) pairs")
    scan.add_argument(
        "-f",
        "--format",
        action="append",
        metavar="NAME[=FILE]",
        help="report format, repeatable; without =FILE to stdout (default: text)",
    )
    scan.add_argument(
        "--sarif-category",
        metavar="NAME",
        help="SARIF automationDetails.id, so several scans can be uploaded side by side",
    )
    scan.add_argument(
        "--sarif-split",
        choices=("none", "account-region"),
        default="none",
        help="one SARIF run (and category) per account and region; at most 20 (GitHub rejects more)",
    )
    _add_asff_arguments(scan)
    scan.add_argument("--sink", action="append", metavar="NAME", help="send the results to this sink (repeatable)")
    scan.add_argument("--fail-on", metavar="SEV", help="critical|high|medium|low|info|never (default: low)")
    scan.add_argument(
        "--baseline", metavar="FILE", help="fail only on findings not in this baseline; report fixed ones"
    )
    scan.add_argument(
        "--write-baseline", metavar="FILE", help="record the current findings as a baseline (exit 0 once written)"
    )
    iac = scan.add_argument_group("infrastructure as code")
    iac.add_argument(
        "--parameters",
        action="append",
        metavar="FILE",
        help="CloudFormation parameter values: create-stack --parameters JSON or a CodePipeline template "
        "configuration (repeatable; later files win)",
    )
    iac.add_argument(
        "--var-file",
        action="append",
        metavar="FILE",
        help="Terraform variable values, as terraform -var-file (repeatable; later files win)",
    )
    scan.add_argument(
        "--ignore-unrecognized",
        action="store_true",
        help="skip named files that are not distribution configurations (for pre-commit file lists)",
    )
    scan.add_argument(
        "--jobs",
        "-j",
        type=_jobs,
        default=None,
        metavar="N",
        help="audit files in N processes, or 'auto' (the default: one per core for scans of 4 MB or more, else 1)",
    )
    scan.add_argument("--exit-zero", action="store_true", help="exit 0 even with findings (errors still exit 2)")
    scan.add_argument(
        "--config",
        metavar="FILE",
        help="config file (default: .ib-audit.toml or pyproject.toml, from the scanned paths upwards)",
    )
    rules_group = scan.add_argument_group("rule selection (combined with the config file as in ruff)")
    rules_group.add_argument(
        "--select", action="append", metavar="ID", help="only these rule ids, prefixes or slugs (replaces the config's)"
    )
    rules_group.add_argument(
        "--extend-select", action="append", metavar="ID", help="also these rules, on top of the selection"
    )
    rules_group.add_argument("--ignore", action="append", metavar="ID", help="skip these rules (added to the config's)")
    rules_group.add_argument("--extend-ignore", action="append", metavar="ID", help="same as --ignore")
    supp = scan.add_argument_group("suppressions")
    supp.add_argument(
        "--no-inline-suppressions",
        action="store_true",
        help="ignore the authors' tag, Metadata and comment suppressions; only config and baseline apply",
    )
    supp.add_argument(
        "--report-unused-suppressions", action="store_true", help="warn about suppressions that suppressed nothing"
    )
    supp.add_argument(
        "--show-suppressed", action="store_true", help="list suppressed and baselined findings in the text report"
    )
    scan.add_argument(
        "--force-exclude", action="store_true", help="apply exclude globs to files named on the command line too"
    )
    scan.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the text report on stdout (auto: on a terminal; honours NO_COLOR, FORCE_COLOR, TERM=dumb)",
    )
    scan.add_argument(
        "-v", "--verbose", action="store_true", help="name the config file, log skipped files and each step to stderr"
    )
    scan.add_argument("-q", "--quiet", action="store_true", help="no progress, log or warning output on stderr")

    merge = sub.add_parser(
        "merge",
        help="merge JSON reports of several runs and write any report from them",
        formatter_class=_HelpFormatter,
    )
    merge.add_argument("files", nargs="+", metavar="FILE", help="JSON reports written with -f json=FILE")
    merge.add_argument("-f", "--format", action="append", metavar="NAME[=FILE]", help="as for scan (default: text)")
    merge.add_argument("--fail-on", metavar="SEV", help="override the first report's fail-on")
    merge.add_argument("--sarif-category", metavar="NAME", help="SARIF automationDetails.id")
    merge.add_argument("--sarif-split", choices=("none", "account-region"), default="none", help="as for scan")
    merge.add_argument("--exit-zero", action="store_true", help="exit 0 even with findings")
    merge.add_argument("--show-suppressed", action="store_true", help="as for scan")
    merge.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="as for scan")
    _add_asff_arguments(merge)

    rules = sub.add_parser("rules", help="list rules, severities and options", formatter_class=_HelpFormatter)
    rules.add_argument("--format", choices=("text", "json"), default="text")
    rules.add_argument(
        "--framework",
        metavar="NAME",
        help="list the controls of this framework and the rules that evidence each (nist-800-53-r5, aws-fsbp, cis-aws)",
    )
    explain = sub.add_parser("explain", help="a rule's full help", formatter_class=_HelpFormatter)
    explain.add_argument("rule", metavar="ID", help="rule id or slug, e.g. IBD002 or ami-public-launch-permission")
    sub.add_parser("plugins", help="loaded plugins and what each contributes", formatter_class=_HelpFormatter)
    return parser


def _add_asff_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ASFF for configurations read from files (no account or region of their own)")
    group.add_argument("--asff-account", metavar="ID", help="AWS account id Security Hub should file them under")
    group.add_argument("--asff-region", metavar="REGION", help="region of that Security Hub")


def _asff_options(args: argparse.Namespace) -> dict:
    """--asff-account/--asff-region, checked: a usage error is a ValueError."""
    account, region = args.asff_account, args.asff_region
    if account is not None and not re.fullmatch(r"\d{12}", account):
        raise ValueError(f"--asff-account takes a 12-digit AWS account id, got {account!r}")
    if (account is None) != (region is None):
        raise ValueError("--asff-account and --asff-region go together")
    return {"asff_account": account, "asff_region": region}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # A lone surrogate in a merged report must not make writing the text report fail.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("ib-audit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (head, less) went away: not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        # A bug of ours must still end in one readable line and exit 2, not a traceback.
        if os.environ.get("IB_AUDIT_DEBUG") == "1":
            raise
        print(
            f"ib-audit: internal error: {type(exc).__name__}: {exc} (set IB_AUDIT_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 2


def _split(values: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(v.strip() for item in values or () for v in item.split(",") if v.strip())


def _parse_formats(specs: Sequence[str] | None, reporters: dict) -> list[tuple[str, str | None]]:
    outputs = []
    for spec in specs or ["text"]:
        name, sep, file = spec.partition("=")
        if name not in reporters:
            raise ValueError(f"unknown report format {name!r} (available: {', '.join(sorted(reporters))})")
        if sep and not file:
            raise ValueError(f"-f {spec}: missing file name after '='")
        outputs.append((name, file or None))
    if sum(1 for _, f in outputs if f is None) > 1:
        raise ValueError("only one report can go to stdout; give the others a file: -f NAME=FILE")
    return outputs


def _usage_error(message: str) -> int:
    """A usage or config problem: one line on stderr, exit 2, nothing scanned, no report."""
    _error(message)
    return 2


def _error(message: str) -> None:
    """One error line on stderr; values from the data are shown escaped (reporting.log_safe)."""
    print(log_line(f"ib-audit: error: {log_safe(message)}"), file=sys.stderr)


class _LogSafeFormatter(logging.Formatter):
    """Log lines name files and regions from the data: shown escaped, one line each."""

    def format(self, record: logging.LogRecord) -> str:
        return log_line(log_safe(super().format(record)))


# Reports that show the lines around a finding: they get them from the files the scan
# loaded, once, and the JSON report carries them on for merge.
SNIPPET_FORMATS = ("json", "html")


def _check_distinct_outputs(outputs: list[tuple[str, str | None]], baseline: str | None = None) -> None:
    """Two outputs into one file would leave only the last: a usage error, before any work."""
    named = [(f"-f {name}={file}", file) for name, file in outputs if file is not None]
    if baseline:
        named.append((f"--write-baseline {baseline}", baseline))
    seen: dict[str, str] = {}
    for flag, file in named:
        key = same_file_key(file)
        if key is None:
            continue
        if key in seen:
            raise ValueError(f"{seen[key]} and {flag} write the same file; give each its own")
        seen[key] = flag


def _check_outputs(outputs: list[tuple[str, str | None]], reporters: dict) -> None:
    """A report that cannot be written should stop the run before a long scan, not after."""
    for name, file in outputs:
        if file is not None and not Path(file).parent.is_dir():
            raise ValueError(f"-f {name}={file}: directory {Path(file).parent} does not exist")
        check = getattr(reporters[name], "check", None)
        if callable(check):
            try:
                check()
            except ReportError as exc:  # a missing optional dependency: the message says how to get it
                raise ValueError(f"-f {name}{'=' + file if file else ''}: {exc}") from None


def cmd_scan(args: argparse.Namespace) -> int:
    """``ib-audit scan``; the cycle collector is left as found (``_scan`` tunes it), for a
    program that calls ``main`` more than once."""
    threshold = gc.get_threshold()
    try:
        return _scan(args)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def _scan(args: argparse.Namespace) -> int:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogSafeFormatter("ib-audit: %(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose and not args.quiet else logging.WARNING, handlers=[handler])
    host = PluginHost()
    rule_classes = [rule for _, rule in host.rules()]
    reporters = host.reporters()
    try:
        outputs = _parse_formats(args.format, reporters)
        _check_outputs(outputs, reporters)
        _check_distinct_outputs(outputs, args.write_baseline)
        fail_on_flag = parse_fail_on(args.fail_on) if args.fail_on else None
        asff_options = _asff_options(args)
        sinks = _chosen_sinks(args, host.sinks()) if args.security_hub or args.sink else []
    except ValueError as exc:
        _print_plugin_errors(host)
        return _usage_error(str(exc))

    # --role-name with --aws-context reads other accounts for a file scan; alone it means many accounts.
    many = bool((args.role_name and not args.aws_context) or args.accounts or args.accounts_file or args.organization)
    live = args.aws or bool(args.arn) or many
    if args.shard and not (args.aws or many):
        return _usage_error("--shard needs --aws or --accounts/--accounts-file/--organization")
    paths = args.paths or ([] if live else ["."])
    start = discovery_start(paths)
    settings = load_settings(Path(args.config) if args.config else None, rule_classes, start=start)
    if args.verbose and not args.quiet:
        used = settings.config_file or f"none found (searched from {start} upwards)"
        print(f"ib-audit: config: {used}", file=sys.stderr)
    _apply_flags(settings, args, fail_on_flag, rule_classes)
    if settings.errors:
        for error in settings.errors[:-1]:
            _error(error.display())
        return _usage_error(settings.errors[-1].display())
    baseline = None
    if args.baseline:
        from auditor.baseline import load_baseline

        baseline, problem = load_baseline(Path(args.baseline))
        if problem is not None:
            return _usage_error(problem.display())

    aws_options = org_options = shard = None
    context = (live or args.aws_context) and not args.no_aws_context
    sessions: dict = {}  # account -> assumed-role session of an organization scan, for the context facts
    org_listing = None  # what --organization listed, for the context facts
    if live or context:
        if args.max_workers < 1:
            return _usage_error("--max-workers must be at least 1")
        if not args.call_deadline > 0:
            return _usage_error("--call-deadline must be a positive number of seconds")
        try:
            from auditor.sources import aws  # boto3 is imported only on this path
        except ImportError as exc:
            return _usage_error(f"the live scan needs boto3, which cannot be imported ({exc}); pip install boto3")
        if many or args.shard:
            from auditor.sources import org

            try:
                shard = org.parse_shard(args.shard) if args.shard else None
            except ValueError as exc:
                return _usage_error(str(exc))
            if many and not args.role_name:
                return _usage_error("--accounts/--organization need --role-name")
        if live and (many or args.shard or not args.arn):
            problem = _region_problem(aws, args)
            if problem:
                return _usage_error(problem)
        aws_options = aws.AwsOptions(
            regions=_split(args.region),
            arns=tuple(args.arn or ()),
            profile=args.profile,
            endpoint_url=args.endpoint_url,
            max_workers=args.max_workers,
            deadline=args.call_deadline,
            snapshot_dir=Path(args.snapshot_dir) if args.snapshot_dir else None,
            progress=sys.stderr.isatty() and not args.quiet,
        )

    host.configure(settings)
    specs = configure_rules(host, settings)
    report_coverage = None
    settings.parameter_files = tuple(args.parameters or ())
    settings.var_files = tuple(args.var_file or ())
    settings.scan_paths = tuple(str(p) for p in paths)
    sources = host.file_sources()
    source_errors = []
    for source in sources:  # sources that take inputs of their own (--parameters, --var-file)
        configure = getattr(source, "configure", None)
        if callable(configure):
            source_errors.extend(configure(settings))
    max_bytes = settings.max_file_size_mb * 1_000_000
    run = on_file = None
    if not context:
        # Each file is audited as soon as it is read, and only what reports need is kept
        # of it (the account-context rules instead need every target's facts first).
        run = Audit(host, specs, settings)
        snippets = SnippetMaker(max_bytes) if any(name in SNIPPET_FORMATS for name, _ in outputs) else None
        keep = _keep_configs(host, outputs, reporters, sinks)

        def on_file(targets, display, text):
            return run.add_file(targets, display, text, snippets=snippets, keep_configs=keep)

    # The cycle collector, left as it is, cost 5% of a 2,000-configuration scan (counted
    # in instructions): what start-up made (modules, plugins, rules) lives as long as the
    # run, so it is frozen out of every full collection; and a file's document, freed by
    # reference counting once audited, was walked by young collections while it lived
    # (one every 700 allocations). Both together save 2%; forked workers inherit them.
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    loaded = _load_files(args, paths, sources, max_bytes, settings, run, on_file)
    if loaded is None:
        return 2
    loaded.errors[:0] = source_errors  # problems with --parameters / --var-file come first
    scanned = list(paths)
    if live:
        from auditor.sources import aws

        if many or args.shard:
            from auditor.sources import org

            if many:
                org_options = org.OrgOptions(
                    role_name=args.role_name,
                    accounts=_split(args.accounts),
                    accounts_file=Path(args.accounts_file) if args.accounts_file else None,
                    organization=args.organization,
                    external_id=args.external_id,
                    session_name=args.role_session_name,
                    duration=args.session_duration,
                    per_account=args.max_workers_per_account,
                    shard=shard,
                )
                org_listing = org.OrgListing()
                fetched, coverage = org.fetch_organization(
                    aws_options, org_options, sessions=sessions, listing=org_listing
                )
            else:
                fetched, coverage = org.fetch_sharded_account(aws_options, shard)
            report_coverage = coverage
        else:
            fetched = aws.fetch(aws_options)
        loaded.targets.extend(fetched.targets)
        loaded.errors.extend(fetched.errors)
        if run is not None:
            run.add(fetched.targets)
        scanned += [f"aws:{r}" for r in _split(args.region) or ["default-region"]] if args.aws else []
        scanned += list(args.arn or ())
    if run is None:
        facts, error = _account_context(args, aws_options, host, loaded.targets, sessions, org_options, org_listing)
        if error is not None:
            loaded.errors.append(error)
        run = Audit(host, specs, settings, facts=facts, targets=loaded.targets)
        loaded.targets = run.add(loaded.targets)
    run.warnings.extend(loaded.notices)
    result = run.finish(
        loaded.targets,
        loaded.errors,
        scanned=scanned,
        report_options={
            "sarif_category": args.sarif_category,
            "sarif_split": args.sarif_split,
            "coverage": report_coverage,
            **asff_options,
            "show_suppressed": args.show_suppressed,
        },
    )

    if baseline is not None:
        from auditor.baseline import apply_baseline

        findings, fixed = apply_baseline(result.findings, baseline, result.targets)
        result = replace(
            result, findings=tuple(findings), fixed=tuple(fixed), warnings=(*result.warnings, *baseline.notices())
        )
    if args.write_baseline:
        try:
            from auditor.baseline import write_baseline

            write_baseline(Path(args.write_baseline), result.findings, result.targets)
        except OSError as exc:  # an error like any other: the reports are still written
            problem = InputError(args.write_baseline, f"cannot write baseline: {exc.strerror or exc}")
            result = replace(result, errors=(*result.errors, problem))
        else:
            if not args.quiet:
                print(f"ib-audit: wrote {len(result.findings)} finding(s) to {args.write_baseline}", file=sys.stderr)
    if sinks:
        from auditor.sinks import SinkContext

        sink_context = SinkContext(aws=aws_options, org=org_options, listed=fetched.listed if live else {})
        result = _send_to_sinks(result, sinks, sink_context, quiet=args.quiet)
    if any(name in SNIPPET_FORMATS for name, _ in outputs):
        # Files audited as they were read have theirs; live snapshots and context scans not yet.
        result = attach_snippets(result, max_bytes)
    code = _write_reports(result, outputs, reporters, args)
    if args.write_baseline and code == 1:
        return 0  # the baseline was the point of the run; it is written
    return code


def _load_files(args, paths, sources, max_bytes: int, settings, run, on_file):
    """Every file under ``paths`` read, loaded and (with ``run``) audited: in one process,
    or shared among forked workers when ``--jobs`` asks or the scan is big enough."""
    force_exclude = _excluder(settings, walking=False) if settings.force_exclude else None
    found = inputs(
        paths,
        strict=not args.ignore_unrecognized,
        exclude=_excluder(settings, walking=True),
        force_exclude=force_exclude,
    )
    if run is None or args.jobs == 1:
        return load_inputs(found, sources, max_bytes, on_file)  # each file loaded as the walk finds it
    from auditor import parallel

    items, logged = parallel.listed(found)  # the walk's -v lines kept for their place
    jobs = parallel.worth_forking(items, args.jobs)
    if jobs == 1:
        return load_inputs(parallel.replayed(items, logged), sources, max_bytes, on_file)
    try:
        return parallel.load_in_workers(
            items, sources, max_bytes, jobs=jobs, on_file=on_file, recorder=run, logged=logged
        )
    except parallel.CannotFork as exc:
        # Said when --jobs asked for workers; "auto" falls back quietly (-v says why).
        say = log.warning if args.jobs is not None else log.info
        say("cannot start worker processes (%s): scanning in one", exc)
        return load_inputs(parallel.replayed(items, logged), sources, max_bytes, on_file)
    except parallel.WorkerDied as exc:
        _error(f"scan: {exc}")
        return None


def _jobs(raw: str) -> int | None:
    """``--jobs``: a number of processes, or ``auto``."""
    if raw == "auto":
        return None
    try:
        jobs = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of processes or 'auto'") from None
    if jobs < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return jobs


def _keep_configs(host: PluginHost, outputs, reporters: dict, sinks: list) -> bool:
    """Whether the audited configurations must outlive their files: a report format that
    reads them (HTML, ASFF, OCSF, any plugin's unless it says otherwise), a sink, or a
    third-party plugin that sees the whole result."""
    if any(getattr(reporters[name], "needs_configs", True) for name, _ in outputs) or sinks:
        return True
    plugins = {impl.plugin_name for impl in host.pm.hook.auditor_session_finish.get_hookimpls()}
    return any(host.infos.get(name) is None or host.infos[name].origin != "builtin" for name in plugins)


def _region_problem(aws, args: argparse.Namespace) -> str | None:
    """A live scan without a region would scan nothing: a usage error, not an empty report."""
    if _split(args.region):
        return None
    try:
        region = aws.base_session(args.profile).region_name
    except Exception as exc:  # botocore's ProfileNotFound, a broken ~/.aws/config
        return f"cannot set up the AWS session: {exc}"
    if region:
        return None
    return "the live scan needs a region: pass --region R (repeatable, or 'all'), or set AWS_REGION"


def _excluder(settings: Settings, *, walking: bool):
    """Whether a path is excluded (``exclude`` + ``extend-exclude``).

    A walk prunes as it descends, so it tests each path itself; a path named on the
    command line (``--force-exclude``) is excluded when it or a directory above it is.
    """
    from auditor.globs import PathGlobs

    patterns = (*settings.exclude, *settings.extend_exclude)
    if not patterns:
        return lambda path: False
    globs = PathGlobs(patterns, settings.base_dir or Path.cwd())
    return lambda path: globs.first_match(path, itself=walking) is not None


def _chosen_sinks(args: argparse.Namespace, available: dict) -> list:
    """The sinks --security-hub / --sink ask for; a usage error is a ValueError."""
    names = (["security-hub"] if args.security_hub else []) + [n.strip() for n in args.sink or ()]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown sink {unknown[0]!r} (available: {', '.join(sorted(available)) or 'none'})")
    if "security-hub" in names:
        live = args.aws or args.arn or args.role_name or args.accounts or args.accounts_file or args.organization
        if args.paths or not live:
            raise ValueError(
                "--security-hub sends live findings (--aws, --arn, --organization...); "
                "for files, write -f asff=FILE with --asff-account/--asff-region and import it"
            )
    return [available[n] for n in dict.fromkeys(names)]


def _send_to_sinks(result: AuditResult, sinks: list, context, quiet: bool) -> AuditResult:
    """Send the result to each sink, each in its own guard; their errors join the result's."""
    errors = list(result.errors)
    summaries = {}
    for sink in sinks:
        try:
            report = sink.send(result, context)
        except Exception as exc:  # a sink's bug must not lose the reports
            errors.append(InputError(f"sink {sink.name}", f"failed: {type(exc).__name__}: {exc}"))
            continue
        errors.extend(report.errors)
        summaries[sink.name] = report.summary
        if not quiet:
            counts = ", ".join(f"{k} {v}" for k, v in report.summary.items() if isinstance(v, int))
            where = report.summary.get("pairs")
            suffix = f" in {len(where)} account/region pair(s)" if isinstance(where, list) else ""
            print(f"ib-audit: {sink.name}: {counts or 'done'}{suffix}", file=sys.stderr)
    return replace(result, errors=tuple(errors), report_options={**result.report_options, "sinks": summaries})


def _account_context(args, aws_options, host: PluginHost, targets, sessions: dict, org_options, org_listing=None):
    """The fact store of a scan with AWS access, or (None, the error that stops it).

    An organization scan's own ``ListAccounts`` answer is the members fact: the
    organization is listed once per run.
    """
    from auditor.context import FactStore
    from auditor.context import aws as context_aws
    from auditor.sources import aws, org

    role = org_options or (
        org.OrgOptions(
            role_name=args.role_name,
            external_id=args.external_id,
            session_name=args.role_session_name,
            duration=args.session_duration,
        )
        if args.role_name
        else None
    )
    if org_options is not None:
        base = aws.base_session(args.profile)
        access = context_aws.live_access(
            aws_options,
            (),
            sessions=sessions,
            assume=lambda account: org.assumed_session(base, account, org_options),
            role_name=org_options.role_name,
            per_account=org_options.per_account,
        )
    elif args.aws or args.arn:
        access = context_aws.live_access(aws_options, {t.origin.account for t in targets if t.origin.account})
    else:
        access, error = context_aws.file_access(
            aws_options,
            assume=(lambda base, account: org.assumed_session(base, account, role)) if role else None,
            role_name=args.role_name,
        )
        if access is None:
            return None, error
    store = FactStore(host.fact_providers(), access, workers=aws_options.max_workers)
    members = context_aws.organization_members(org_listing)
    if members is not None:
        store.seed(members)
    return store, None


def cmd_merge(args: argparse.Namespace) -> int:
    from auditor.merge import merge_reports

    host = PluginHost()
    reporters = host.reporters()
    try:
        outputs = _parse_formats(args.format, reporters)
        _check_outputs(outputs, reporters)
        _check_distinct_outputs(outputs)
        fail_on = parse_fail_on(args.fail_on) if args.fail_on else None
        asff_options = _asff_options(args)
    except ValueError as exc:
        return _usage_error(str(exc))
    result = merge_reports([Path(f) for f in args.files], {r.id: (p, r) for p, r in host.rules()})
    result = replace(
        result,
        report_options={
            **result.report_options,
            "sarif_category": args.sarif_category,
            "sarif_split": args.sarif_split,
            **asff_options,
            "show_suppressed": args.show_suppressed,
        },
    )
    if args.fail_on:
        result = replace(result, fail_on=fail_on)
    return _write_reports(result, outputs, reporters, args)


def use_color(choice: str, stream, environ=os.environ) -> bool:
    """Whether to colour a terminal report.

    ``--color always|never`` decide. With ``auto``: ``NO_COLOR`` (set and not empty)
    turns colour off, else ``FORCE_COLOR`` (set, not empty, not ``0``) turns it on, else
    colour only on a terminal whose ``TERM`` is not ``dumb`` (the order pytest uses).
    """
    if choice != "auto":
        return choice == "always"
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR", "") not in ("", "0"):
        return True
    if environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _write_reports(result: AuditResult, outputs, reporters, args) -> int:
    code = result.exit_code
    if getattr(args, "exit_zero", False) and code == 1:
        code = 0
    if not getattr(args, "quiet", False):
        for warning in result.warnings:
            print(f"ib-audit: warning: {warning.display()}", file=sys.stderr)
    for name, file in outputs:
        reporter = reporters[name]
        if file is None:
            color = name == "text" and use_color(getattr(args, "color", "auto"), sys.stdout)
            try:
                reporter.write(result, sys.stdout, color=color)
            except BrokenPipeError:
                raise
            except ReportError as exc:
                _error(f"cannot write the {name} report: {exc}")
                code = 2
            except Exception as exc:
                _error(f"report {name} failed: {type(exc).__name__}: {exc}")
                code = 2
            continue
        try:
            with open_atomic(Path(file)) as handle:
                reporter.write(result, handle)
        except OSError as exc:
            _error(f"cannot write {name} report to {file}: {exc.strerror or exc}")
            code = 2
        except ReportError as exc:
            _error(f"cannot write the {name} report: {exc}")
            code = 2
        except Exception as exc:
            _error(f"report {name} failed: {type(exc).__name__}: {exc}")
            code = 2
    # Errors also go to stderr when stdout carries a machine-readable report.
    if result.errors and not getattr(args, "quiet", False) and any(n != "text" or f for n, f in outputs):
        for e in result.errors:
            _error(e.display())
    return code


def _apply_flags(settings: Settings, args: argparse.Namespace, fail_on: Severity | None, rules) -> None:
    """Lay the command line over the config file (rule selection as ruff does, see config.py)."""
    if args.fail_on:
        settings.fail_on = fail_on
    values: dict[str, tuple[str, ...]] = {}
    for flag in ("select", "extend_select", "ignore", "extend_ignore"):
        given = _split(getattr(args, flag, None))
        bad = unknown_selectors(given, rules)
        for selector in bad:
            settings.errors.append(InputError(f"--{flag.replace('_', '-')}", f"unknown rule id or prefix {selector!r}"))
        values[flag] = tuple(v for v in given if v not in bad)
        settings.warnings += retired_notices(values[flag], rules, f"--{flag.replace('_', '-')}")
    settings.cli_selection = RuleSelection(
        select=values["select"] or None,
        extend_select=values["extend_select"],
        ignore=values["ignore"] + values["extend_ignore"],
    )
    if args.no_inline_suppressions:
        settings.inline_suppressions = False
    if args.report_unused_suppressions:
        settings.report_unused_suppressions = True
    if args.force_exclude:
        settings.force_exclude = True


def _find_rule(host: PluginHost, key: str):
    for _, rule in host.rules():
        if key.upper() == rule.id or key == rule.slug:
            return rule
    return None


def cmd_rules(args: argparse.Namespace) -> int:
    from auditor import controls

    host = PluginHost()
    rules = [rule for _, rule in host.rules()]
    providers = host.fact_providers()

    def actions(rule) -> list[str]:
        return sorted({a for kind in rule.facts if kind in providers for a in providers[kind].actions})

    if args.framework:
        try:
            framework = controls.table().framework(args.framework)
        except KeyError as exc:
            print(f"ib-audit: error: {exc.args[0]}", file=sys.stderr)
            return 2
        _print_framework(framework, rules, args.format)
    elif args.format == "json":
        data = [
            {
                "id": r.id,
                "slug": r.slug,
                "severity": r.severity.label,
                "summary": r.summary,
                "tags": list(r.tags),
                "needs_aws_context": r.needs_aws_context(),
                "aws_actions": actions(r),
                "help_uri": r.help_uri(),
                "controls": controls.requirements_for(r),
                "retired": r.retired,
                "sources": [asdict(source) for source in r.sources],
                "options": [
                    {"name": o.name, "type": o.type_name, "default": _jsonable(o.default), "help": o.help}
                    for o in r.option_fields()
                ],
            }
            for r in rules
        ]
        print(json.dumps(data, indent=2))
    else:
        for r in rules:
            if r.retired:
                print(f"{r.id}  {r.slug:<40} {'retired':<9} {r.retired}")
                continue
            print(f"{r.id}  {r.slug:<40} {r.severity.label:<9} {r.summary}")
            if r.needs_aws_context():
                print(f"        needs AWS context: {', '.join(actions(r))}")
            for o in r.option_fields():
                print(f"        option {o.name} ({o.type_name}, default {_toml(o.default)}): {o.help}")
            if controls.requirements_for(r):
                print(f"        controls: {', '.join(controls.requirements_for(r))}")
    _print_plugin_errors(host)
    return 2 if host.errors else 0


def _print_framework(framework, rules, fmt: str) -> None:
    """One framework's controls, each with the rules that evidence it."""
    from auditor import controls

    by_control: dict[str, list] = {cid: [] for cid in framework.controls}
    for rule in rules:
        for control in controls.controls_for(rule):
            if control.framework is framework:
                by_control[control.id].append(rule)
    mapped_ids = {r.id for mapped in by_control.values() for r in mapped}
    unmapped = sorted(r.id for r in rules if r.id not in mapped_ids)
    if fmt == "json":
        data = {
            "framework": framework.key,
            "title": framework.title,
            "url": framework.url,
            "note": framework.note or None,
            "controls": [
                {
                    "id": cid,
                    "title": framework.controls[cid],
                    "requirement": framework.requirement(cid),
                    "rules": [r.id for r in by_control[cid]],
                }
                for cid in framework.controls
                if by_control[cid]
            ],
            "rules_without_control": unmapped,
        }
        print(json.dumps(data, indent=2))
        return
    print(f"{framework.title} ({framework.key}): {framework.url}")
    if framework.note:
        print(framework.note)
    for cid, mapped in by_control.items():
        if not mapped:
            continue
        print(f"{cid:<10} {framework.controls[cid]}")
        for r in mapped:
            print(f"           {r.id}  {r.slug}")
    if unmapped:
        print(f"Rules that evidence no control of this framework: {', '.join(unmapped)}")


def cmd_explain(args: argparse.Namespace) -> int:
    host = PluginHost()
    rule = _find_rule(host, args.rule)
    if rule is None:
        print(f"ib-audit: error: unknown rule {args.rule!r}; see 'ib-audit rules'", file=sys.stderr)
        return 2
    if rule.retired:
        print(f"{rule.id} {rule.slug} (retired)")
        print()
        print(rule.help_text())
        return 0
    print(f"{rule.id} {rule.slug} (default severity: {rule.severity.label})")
    print()
    print(rule.help_text())
    if rule.sources:
        print()
        print("Sources:")
        for source in rule.sources:
            print(f"  - {source.display()}")
    fields = rule.option_fields()
    print()
    if fields:
        print(f"Options (in .ib-audit.toml under [rules.{rule.id}]):")
        for o in fields:
            print(f"  {o.name} = {_toml(o.default)}   # {o.type_name}: {o.help}")
    else:
        print(f"Options: none besides severity and enabled (under [rules.{rule.id}]).")
    print()
    from auditor import controls

    mapped = controls.controls_for(rule)
    if mapped:
        print("Controls it evidences: " + "; ".join(f"{c.requirement} ({c.title})" for c in mapped))
    print(f"Suppress on a resource with the tag  ib-audit:ignore = {rule.id}")
    print(f"  or a Terraform comment  # ib-audit:ignore {rule.id} reason until=YYYY-MM-DD")
    if rule.help_uri():
        print(f"More: {rule.help_uri()}")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    host = PluginHost()
    host.rules()
    host.file_sources()
    host.reporters()
    host.sinks()
    host.fact_providers()
    for info in host.infos.values():
        print(f"{info.name} ({info.origin})")
        for kind, names in info.contributes.items():
            print(f"  {kind}: {', '.join(names)}")
    _print_plugin_errors(host)
    return 2 if host.errors else 0


def _print_plugin_errors(host: PluginHost) -> None:
    for e in host.errors:
        _error(e.display())


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(json.dumps(v) for v in value) + "]"
    return json.dumps(value)


COMMANDS = {"merge": cmd_merge, "scan": cmd_scan, "rules": cmd_rules, "explain": cmd_explain, "plugins": cmd_plugins}
