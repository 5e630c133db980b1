"""Organization-wide live scans: many accounts through an assumed role, sharded.

Accounts come from ``--accounts``, ``--accounts-file`` or ``organizations:ListAccounts``
(``--organization``, active accounts only; listed once per run, and the account-context
checks reuse the answer). In each account ib-audit assumes
``arn:<partition>:iam::<account>:role/<role-name>`` with credentials that refresh
themselves on long scans. An account whose role cannot be assumed is an error target
for that account; the others are scanned. Every (account, region) pair is one unit of
work in a single bounded pool; each account has its own pacer and concurrency bound,
so a throttled account slows down alone.

``--shard K/N`` keeps the pairs whose stable hash falls in slice K, so N runners cover
everything exactly once; the JSON report records the shard and its pairs, and
``ib-audit merge`` checks that every shard is there exactly once.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.credentials
import botocore.exceptions
import botocore.session

from auditor.merge import parse_shard  # noqa: F401  (the CLI's --shard parser, boto3-free)
from auditor.model import InputError, Origin, Target
from auditor.sources import LoadResult
from auditor.sources.aws import (
    CLIENT_LOCK,
    AwsOptions,
    FatalAwsError,
    FetchError,
    LiveScanner,
    _Progress,
    base_session,
    paginate,
    scan_pairs,
)

ACCOUNT_RE = re.compile(r"^\d{12}$")


@dataclass
class OrgOptions:
    role_name: str
    accounts: tuple[str, ...] = ()
    accounts_file: Path | None = None
    organization: bool = False
    external_id: str | None = None
    session_name: str = "ib-audit"
    duration: int = 3600
    per_account: int = 4
    shard: tuple[int, int] | None = None  # (K, N), 1-based


def in_shard(account: str, region: str, shard: tuple[int, int] | None) -> bool:
    """Stable across runs and machines: a hash of the pair, not its position in a list."""
    if shard is None:
        return True
    k, n = shard
    digest = hashlib.sha256(f"{account}/{region}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % n == k - 1


@dataclass
class OrgListing:
    """What ``organizations:ListAccounts`` answered for ``--organization``, kept so that the
    account-context checks (IBD021, IBD027) reuse it instead of listing the organization again."""

    accounts: dict[str, str] | None = None  # account id -> state, every member, when the listing completed
    failure: FetchError | None = None  # why it did not


def account_state(account: dict) -> str:
    """An account's lifecycle state: ``State`` ("ACTIVE", "SUSPENDED", "CLOSED"...); ``Status``
    where only that is answered (botocore's Organizations model: Status is retired on
    9 September 2026, in favour of State)."""
    return str(account.get("State") or account.get("Status") or "UNKNOWN")


def resolve_accounts(
    opts: OrgOptions, scanner: LiveScanner, listing: OrgListing | None = None
) -> tuple[list[str], list[InputError]]:
    """The accounts to scan: the flags', the file's and the organization's active members.

    The organization is listed through ``scanner`` (the scan's own credentials), with the
    live scan's retries and pacing; the answer is also kept in ``listing``.
    """
    accounts: list[str] = list(opts.accounts)
    errors: list[InputError] = []
    if opts.accounts_file is not None:
        try:
            for line in opts.accounts_file.read_text(encoding="utf-8").splitlines():
                entry = line.split("#", 1)[0].strip()
                if entry:
                    accounts.append(entry)
        except OSError as exc:
            errors.append(InputError(str(opts.accounts_file), f"cannot read accounts file: {exc.strerror or exc}"))
    if opts.organization:
        region = scanner.session.region_name or "us-east-1"  # Organizations is global
        members: dict[str, str] = {}
        try:
            pages = paginate(
                lambda token: scanner._call(
                    region, "list_accounts", service="organizations", **({"NextToken": token} if token else {})
                ),
                token_key="NextToken",
            )
            for page in pages:
                for account in page.get("Accounts") or []:
                    if isinstance(account, dict) and isinstance(account.get("Id"), str):
                        members[account["Id"]] = account_state(account)
        except FatalAwsError:
            raise
        except FetchError as exc:
            errors.append(InputError("organization", f"cannot list accounts: {exc}"))
            if listing is not None:
                listing.failure = exc
        else:
            accounts.extend(account for account, state in members.items() if state == "ACTIVE")
            if listing is not None:
                listing.accounts = members
    good = []
    for account in dict.fromkeys(accounts):
        if ACCOUNT_RE.match(account):
            good.append(account)
        else:
            errors.append(InputError(f"account {account}", "not a 12-digit AWS account id"))
    return good, errors


# One STS client per base session serves every AssumeRole of the run, refreshes included.
_STS_CLIENTS: weakref.WeakKeyDictionary[boto3.session.Session, object] = weakref.WeakKeyDictionary()


def _sts_client_creator(base: boto3.session.Session):
    """A ``client_creator`` for botocore's AssumeRoleCredentialFetcher that hands back one
    STS client, built once from ``base``.

    The fetcher asks for a client on every fetch, with the source credentials frozen
    into it; that built an STS client (and opened a connection) per account and per
    refresh. The shared client signs with ``base``'s own credentials, the very source the
    fetcher would have frozen, and refreshes them if they refresh themselves.
    """

    def create(service_name: str, **_source_credentials: object):
        with CLIENT_LOCK:  # sessions are not thread-safe; roles are assumed in parallel
            client = _STS_CLIENTS.get(base)
            if client is None:
                client = _STS_CLIENTS[base] = base._session.create_client(service_name)
        return client

    return create


def assumed_session(base: boto3.session.Session, account: str, opts: OrgOptions) -> boto3.session.Session:
    """A session in ``account`` whose credentials refresh before they expire.

    The first set of credentials is fetched here, so a role that cannot be assumed
    fails now, for this account only. Safe to call from several threads at once.
    """
    with CLIENT_LOCK:  # the base session is shared, and finds its credentials on first use
        partition = base.get_partition_for_region(base.region_name or "us-east-1")
        source = base.get_credentials()
    role_arn = f"arn:{partition}:iam::{account}:role/{opts.role_name}"
    extra = {"RoleSessionName": opts.session_name, "DurationSeconds": opts.duration}
    if opts.external_id:
        extra["ExternalId"] = opts.external_id
    if source is None:
        raise FatalAwsError("AWS credentials not found; configure a profile, environment variables or a role")
    fetcher = botocore.credentials.AssumeRoleCredentialFetcher(
        client_creator=_sts_client_creator(base),
        source_credentials=source,
        role_arn=role_arn,
        extra_args=extra,
    )
    fetcher.fetch_credentials()  # fail now if the role cannot be assumed
    credentials = botocore.credentials.DeferredRefreshableCredentials(
        method="assume-role", refresh_using=fetcher.fetch_credentials
    )
    # A session per account: credentials belong to the session its clients are built
    # from, and a client given plain keys could not refresh them on a long scan.
    with CLIENT_LOCK:
        inner = botocore.session.Session()
        inner._credentials = credentials
        session = boto3.session.Session(botocore_session=inner, region_name=base.region_name)
        # Every account reads the same service models, endpoint rules and partitions: share
        # the base session's loader, which keeps what it parsed. A fresh one parsed them
        # again for each account (about 90 ms of CPU per account). Registered after boto3
        # has set the session up, which adds boto3's data directory to the session's
        # loader: the shared one has it already, and would get it again per account.
        inner.register_component("data_loader", base._session.get_component("data_loader"))
    return session


def fetch_organization(
    aws: AwsOptions,
    opts: OrgOptions,
    sessions: dict[str, boto3.session.Session] | None = None,
    listing: OrgListing | None = None,
) -> tuple[LoadResult, dict]:
    """Scan every (account, region) pair of this shard; return the result and its coverage.

    ``sessions``, when given, receives each account's assumed-role session, and
    ``listing`` what ``organizations:ListAccounts`` answered (the account-context checks
    reuse both).
    """
    result = LoadResult()
    progress = _Progress(aws.progress)
    coverage: dict = {"shard": f"{opts.shard[0]}/{opts.shard[1]}" if opts.shard else None, "pairs": []}
    try:
        base = base_session(aws.profile)
        probe = LiveScanner(aws, session=base, progress=progress)
        accounts, errors = resolve_accounts(opts, probe, listing)
        result.errors.extend(errors)
        all_regions = any(r == "all" for r in aws.regions)
        if all_regions:  # where Image Builder is offered; each account's enabled regions below
            regions, region_errors = probe.offered_regions()
        else:
            regions, region_errors, _ = probe.regions()
        result.errors.extend(region_errors)
        sliced = {account: [r for r in regions if in_shard(account, r, opts.shard)] for account in accounts}
        accounts = [account for account in accounts if sliced[account]]
        wanted = dict(sliced)  # less, for --region all, the regions an account has not enabled

        def enter(account: str) -> tuple[LiveScanner | None, str | None, list[InputError]]:
            """Assume the role in ``account`` (and, for ``--region all``, ask which regions
            it has enabled): the scanner for its pairs, or why there is none."""
            try:
                session = assumed_session(base, account, opts)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                return None, f"cannot assume role {opts.role_name}: {exc}", []
            scanner = LiveScanner(
                aws, session=session, progress=progress, account=account, max_in_flight=opts.per_account
            )
            problems = []
            if all_regions:  # opt-in regions differ per account: ask each one
                enabled, problems = scanner.enabled_regions()
                if enabled is not None:
                    wanted[account] = [r for r in wanted[account] if r in enabled]
            return scanner, None, problems

        # AssumeRole is a round trip to STS per account: in parallel, not one after another.
        with ThreadPoolExecutor(max(1, min(aws.max_workers, len(accounts)))) as pool:
            entered = list(pool.map(enter, accounts))  # a FatalAwsError ends the scan here
        pairs = []
        for account, (scanner, refusal, problems) in zip(accounts, entered, strict=True):
            coverage["pairs"].extend(f"{account}/{r}" for r in sliced[account])
            if scanner is None:
                result.targets.append(
                    Target(
                        id=f"account {account}", name=account, origin=Origin(kind="aws", account=account), error=refusal
                    )
                )
                continue
            if sessions is not None:
                sessions[account] = scanner.session
            result.errors.extend(InputError(f"account {account}", e.message) for e in problems)
            pairs.extend((scanner, region) for region in wanted[account])
        scan_pairs(pairs, aws.max_workers, result, progress, skip_not_enabled=all_regions)
    except FatalAwsError as exc:
        result.errors.append(InputError("aws", str(exc)))
    finally:
        progress.close()
    coverage["pairs"].sort()
    return result, coverage


def fetch_sharded_account(aws: AwsOptions, shard: tuple[int, int] | None) -> tuple[LoadResult, dict]:
    """One account (the current credentials), its regions sharded."""
    result = LoadResult()
    progress = _Progress(aws.progress)
    coverage: dict = {"shard": f"{shard[0]}/{shard[1]}" if shard else None, "pairs": []}
    try:
        scanner = LiveScanner(aws, progress=progress)
        regions, errors, all_regions = scanner.regions()
        result.errors.extend(errors)
        account = "self"
        wanted = [r for r in regions if in_shard(account, r, shard)]
        coverage["pairs"] = sorted(f"{account}/{r}" for r in wanted)
        scan_pairs([(scanner, r) for r in wanted], aws.max_workers, result, progress, skip_not_enabled=all_regions)
    except FatalAwsError as exc:
        result.errors.append(InputError("aws", str(exc)))
    finally:
        progress.close()
    return result, coverage
