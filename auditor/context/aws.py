"""Account access for the context facts: which boto3 session serves which account.

Imported only on the live and ``--aws-context`` paths (it imports boto3). Every call
goes through the live scan's ``LiveScanner._call`` (retries, pacing, deadlines), with
one scanner per (account, service): AWS limits are per account and per service, so a
throttled KMS slows down KMS calls only.

- a live scan of one account: the scan's credentials serve the accounts its
  configurations belong to;
- an organization scan: each scanned account's assumed role, and for any other
  account the role is assumed when a fact there is first needed (once; a refusal is
  the reason every fact of that account could not be verified);
- ``--aws-context`` on files: the credentials of the account the files deploy into,
  identified with ``sts:GetCallerIdentity``; with ``--role-name``, other accounts
  through that role as in an organization scan.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import boto3
import botocore.exceptions

from auditor.context import Caller, CallFailed, Fact, FactKey, NoAccess
from auditor.model import InputError
from auditor.sources.aws import AwsOptions, FatalAwsError, FetchError, LiveScanner, base_session

DEFAULT_REGION = "us-east-1"  # for global services (IAM, Organizations, STS) when nothing else says


def _operation_name(service: str, operation: str) -> str:
    return f"{service}:{''.join(part.capitalize() for part in operation.split('_'))}"


def _error_code(exc: FetchError) -> str:
    """The service's error code behind a FetchError (the ClientError it was raised from)."""
    cause = exc.__context__
    if isinstance(cause, botocore.exceptions.ClientError):
        error = cause.response.get("Error", {})
        status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = str(error.get("Code") or status)
        if code in ("AccessDeniedException", "403", "Forbidden") or (status == 403 and code.isdigit()):
            return "AccessDenied"
        return code
    return str(exc)  # throttled or failing past the retries: the message says how


class AwsAccess:
    """Sessions per account, built lazily, and a paced caller per (account, service)."""

    def __init__(
        self,
        options: AwsOptions,
        base: boto3.session.Session,
        *,
        home_account: str | None = None,
        home_region: str | None = None,
        base_accounts: Iterable[str] = (),
        sessions: Mapping[str, boto3.session.Session] | None = None,
        assume: Callable[[str], boto3.session.Session] | None = None,
        role_name: str | None = None,
        per_account: int | None = None,
    ) -> None:
        self.options = options
        self.base = base
        self.home_account = home_account
        self.home_region = home_region
        self._base_accounts = set(base_accounts) | ({home_account} if home_account else set())
        self._sessions: dict[str, boto3.session.Session] = dict(sessions or {})
        self._refused: dict[str, str] = {}
        self._assume = assume
        self._role_name = role_name
        self._per_account = per_account
        self._scanners: dict[tuple[str, str], LiveScanner] = {}
        self._lock = threading.Lock()
        self._assume_locks: dict[str, threading.Lock] = {}

    def _session(self, account: str) -> boto3.session.Session:
        if not account or account in self._base_accounts:
            return self.base
        if account in self._sessions:
            return self._sessions[account]
        if self._assume is None:
            raise NoAccess(
                f"no credentials for account {account} (scan with --role-name to read other accounts through a role)"
            )
        with self._lock:
            lock = self._assume_locks.setdefault(account, threading.Lock())
        with lock:  # one AssumeRole per account, however many facts wait for it
            if account in self._sessions:
                return self._sessions[account]
            if account in self._refused:
                raise NoAccess(self._refused[account])
            try:
                session = self._assume(account)
            except FatalAwsError:
                raise
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                code = exc.response.get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""
                reason = f"{code or type(exc).__name__} on sts:AssumeRole ({self._role_name} in {account})"
                self._refused[account] = reason
                raise NoAccess(reason) from None
            self._sessions[account] = session
            return session

    def _scanner(self, account: str, service: str, session: boto3.session.Session) -> LiveScanner:
        with self._lock:
            scanner = self._scanners.get((account, service))
            if scanner is None:
                # One scanner (pacer, bound) per account and service: AWS limits are per both.
                # Its clients are shared by all threads and built under the live scan's lock.
                scanner = self._scanners[(account, service)] = LiveScanner(
                    self.options, session=session, account=account or None, max_in_flight=self._per_account
                )
            return scanner

    def caller(self, account: str, region: str) -> Caller:
        try:
            session = self._session(account)
        except FatalAwsError as exc:
            raise NoAccess(str(exc)) from None
        where = region or self.home_region or session.region_name or DEFAULT_REGION

        def call(service: str, operation: str, **params: Any) -> dict:
            scanner = self._scanner(account, service, session)
            try:
                return scanner._call(where, operation, service=service, **params)
            except FatalAwsError as exc:
                raise NoAccess(str(exc)) from None
            except FetchError as exc:
                raise CallFailed(_operation_name(service, operation), _error_code(exc), str(exc)) from None

        return call


def organization_members(listing) -> Fact | None:
    """The ``organization-accounts`` fact from what an ``--organization`` scan listed
    (``auditor.sources.org.OrgListing``): the members, or why they could not be listed,
    in the words the fact provider would use; None when nothing was listed."""
    key = FactKey("organization-accounts", "", "")
    if listing is None:
        return None
    if listing.accounts is not None:
        return Fact(key, value=dict(listing.accounts))
    if listing.failure is not None:
        failed = CallFailed("organizations:ListAccounts", _error_code(listing.failure), str(listing.failure))
        return Fact(key, error=failed.reason)
    return None


def live_access(
    options: AwsOptions,
    accounts: Iterable[str],
    *,
    sessions: Mapping[str, boto3.session.Session] | None = None,
    assume: Callable[[str], boto3.session.Session] | None = None,
    role_name: str | None = None,
    per_account: int | None = None,
) -> AwsAccess:
    """Access for a live scan: ``accounts`` are served by the scan's own credentials."""
    return AwsAccess(
        options,
        base_session(options.profile),
        base_accounts=() if sessions is not None else accounts,
        sessions=sessions,
        assume=assume,
        role_name=role_name,
        per_account=per_account,
    )


def file_access(
    options: AwsOptions,
    *,
    assume: Callable[[boto3.session.Session, str], boto3.session.Session] | None = None,
    role_name: str | None = None,
) -> tuple[AwsAccess | None, InputError | None]:
    """Access for ``--aws-context``: the account the files deploy into, and its region.

    The region is the first ``--region``, else the credentials' region (``AWS_REGION``,
    the profile); it stands in for ``AWS::Region``-like values and global calls.
    """
    try:
        base = base_session(options.profile)
    except botocore.exceptions.ProfileNotFound as exc:
        return None, InputError("--profile", str(exc))
    named = [r for r in options.regions if r != "all"]
    region = named[0] if named else base.region_name
    try:
        identity = LiveScanner(options, session=base)._call(
            region or DEFAULT_REGION, "get_caller_identity", service="sts"
        )
    except FetchError as exc:
        return None, InputError("--aws-context", f"cannot identify the account of these credentials: {exc}")
    account = identity.get("Account")
    return (
        AwsAccess(
            options,
            base,
            home_account=account,
            home_region=region,
            assume=(lambda acct: assume(base, acct)) if assume else None,
            role_name=role_name,
        ),
        None,
    )
