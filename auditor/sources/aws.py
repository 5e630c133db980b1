"""Live configurations from AWS: list every region, get every configuration.

Imported only for ``--aws`` / ``--arn``, so the offline path never loads boto3.

Retries are ours, whatever ``AWS_RETRY_MODE`` says: botocore's standard and adaptive
modes do not retry Image Builder's ``CallRateLimitExceededException`` (HTTP 429), so
the clients are built with retries off and every call goes through ``_call``, which
retries throttling, 5xx and connection errors with jittered exponential backoff under
a total time bound. A shared ``Pacer`` slows every worker down after a 429 and speeds
up again on success, so a throttled scan converges instead of hammering.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.parsers

from auditor import apimodel
from auditor.model import InputError, Origin, SourceMap, Target
from auditor.sources import LoadResult, display_path
from auditor.sources.jsonpos import loads_with_spans

log = logging.getLogger("ib_audit.aws")

ARN_RE = re.compile(
    r"^arn:(?P<partition>[^:]+):imagebuilder:(?P<region>[^:]+):(?P<account>\d{12}):distribution-configuration/(?P<name>.+)$"
)
THROTTLE_CODES = {"CallRateLimitExceededException", "ThrottlingException", "TooManyRequestsException", "Throttling"}
SERVER_CODES = {"ServiceUnavailableException", "ServiceException", "InternalServerError", "InternalFailure"}
CONNECTION_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectTimeoutError,
)
NOT_ENABLED_CODES = {"UnrecognizedClientException", "InvalidClientTokenId", "AuthFailure"}


@dataclass
class AwsOptions:
    regions: Sequence[str] = ()  # empty: the session's region; ["all"]: every region
    arns: Sequence[str] = ()
    profile: str | None = None
    endpoint_url: str | None = None
    max_workers: int = 16
    snapshot_dir: Path | None = None
    max_attempts: int = 8
    base_delay: float = 0.25
    max_delay: float = 8.0
    deadline: float = 120.0  # seconds one call may spend retrying
    progress: bool = False


class FetchError(Exception):
    """A call failed for good; the message says why, in one line."""


class FatalAwsError(FetchError):
    """The scan cannot go on at all (no credentials)."""


class Pacer:
    """Shared pacing between workers (AIMD on the request rate).

    Unpaced until the first 429, which sets the rate to 85% of what was being sent
    in the last second (scaled when the scan is younger than that). Later 429s cut
    the rate by 15%, at most once per half-second: the many 429s of one burst in
    flight are one signal, not many. Each success adds 0.1 request/s (about 10% a
    second near the limit), three times that after 2 s without a 429, so a low start
    recovers quickly. The aggregate rate saw-tooths just under the service's limit
    instead of hammering it or collapsing.
    """

    CUT = 0.85
    CUT_QUIET = 0.5  # seconds between two cuts
    GROWTH = 0.1  # requests/s gained per successful call
    CALM = 2.0  # seconds without a 429 after which growth triples
    WINDOW = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rate: float | None = None
        self._next = 0.0
        self._started: float | None = None
        self._last_cut = -1.0
        self._sent: deque[float] = deque()
        self.throttled_calls = 0

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            if self._started is None:
                self._started = now
            slot = now if self.rate is None else max(now, self._next)
            if self.rate is not None:
                self._next = slot + 1.0 / self.rate
            self._sent.append(slot)
            while self._sent and slot - self._sent[0] > self.WINDOW:
                self._sent.popleft()
        if slot > now:
            time.sleep(slot - now)

    def on_throttle(self) -> None:
        with self._lock:
            self.throttled_calls += 1
            now = time.monotonic()
            if now - self._last_cut < self.CUT_QUIET:
                return
            self._last_cut = now
            if self.rate is None:
                span = min(self.WINDOW, max(now - (self._started or now), 0.05))
                sent = sum(1 for t in self._sent if now - t <= self.WINDOW)
                self.rate = max(0.5, max(sent / span, 1.0) * self.CUT)
            else:
                self.rate = max(0.5, self.rate * self.CUT)

    def on_success(self) -> None:
        with self._lock:
            if self.rate is not None:
                calm = time.monotonic() - self._last_cut > self.CALM
                self.rate += self.GROWTH * (3 if calm else 1)


@dataclass
class _Progress:
    enabled: bool
    regions_total: int = 0
    regions_done: int = 0
    configs_total: int = 0
    configs_done: int = 0
    errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, **deltas: int) -> None:
        with self._lock:
            for key, delta in deltas.items():
                setattr(self, key, getattr(self, key) + delta)
            if self.enabled:
                sys.stderr.write(
                    f"\rib-audit: regions {self.regions_done}/{self.regions_total}  "
                    f"configurations {self.configs_done}/{self.configs_total}  errors {self.errors}  "
                )
                sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def base_session(profile: str | None) -> boto3.session.Session:
    # botocore reads AWS_DEFAULT_REGION only; AWS_REGION is what most AWS SDKs and CI
    # systems set, so it is honoured too.
    region = None if os.environ.get("AWS_DEFAULT_REGION") else os.environ.get("AWS_REGION")
    return boto3.session.Session(profile_name=profile, region_name=region)


class LiveScanner:
    """The calls of one account: its own clients, and its own pacer (limits are per account)."""

    def __init__(
        self,
        options: AwsOptions,
        session: boto3.session.Session | None = None,
        progress: _Progress | None = None,
        account: str | None = None,
        max_in_flight: int | None = None,
    ) -> None:
        self.options = options
        self.session = session or base_session(options.profile)
        self.account = account
        self.pacer = Pacer()
        self._local = threading.local()
        self.progress = progress or _Progress(options.progress)
        self.slots = threading.BoundedSemaphore(max_in_flight or options.max_workers)
        # Retries off inside botocore: ours cover the 429 botocore ignores, in every mode.
        self._config = botocore.config.Config(
            retries={"total_max_attempts": 1},
            connect_timeout=10,
            read_timeout=30,
            max_pool_connections=options.max_workers,
        )

    # -- clients and calls -------------------------------------------------------------
    def client(self, region: str):
        clients = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = {}
        if region not in clients:  # one client per (thread, region), as boto3 requires
            clients[region] = self.session.client(
                "imagebuilder", region_name=region, endpoint_url=self.options.endpoint_url, config=self._config
            )
        return clients[region]

    def _call(self, region: str, operation: str, **kwargs: Any) -> dict:
        with self.slots:  # per-account concurrency, so one account cannot take every worker
            return self._call_unbounded(region, operation, **kwargs)

    def _call_unbounded(self, region: str, operation: str, **kwargs: Any) -> dict:
        opts = self.options
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            throttled = False
            self.pacer.wait()
            log.info(
                "%s %s %s (attempt %d)", region, operation, kwargs.get("distributionConfigurationArn", ""), attempt
            )
            try:
                response = getattr(self.client(region), operation)(**kwargs)
                self.pacer.on_success()
                return response
            except botocore.exceptions.ClientError as exc:
                error = exc.response.get("Error", {})
                code = error.get("Code", "")
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                message = error.get("Message") or code
                if code in THROTTLE_CODES or status == 429:
                    self.pacer.on_throttle()
                    reason = f"throttled ({code or status})"
                    throttled = True
                elif code in SERVER_CODES or status >= 500:
                    reason = f"service error {status} {code}".strip()
                elif code == "ForbiddenException" or status == 403:
                    if code in NOT_ENABLED_CODES:
                        raise FetchError(f"region not enabled for this account ({code})") from None
                    raise FetchError(f"access denied ({code}): {message}") from None
                elif code == "ResourceNotFoundException" or status == 404:
                    raise FetchError(f"not found: {message}") from None
                elif code in NOT_ENABLED_CODES:
                    raise FetchError(f"region not enabled for this account ({code})") from None
                else:
                    raise FetchError(f"{code or status}: {message}") from None
            except CONNECTION_ERRORS as exc:
                reason = f"connection error: {exc}"
            except botocore.parsers.ResponseParserError:
                raise FetchError("bad response body: the service's answer is not valid JSON") from None
            except (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError) as exc:
                raise FatalAwsError(
                    f"AWS credentials not found ({exc}); configure a profile, environment variables or a role"
                ) from None
            except botocore.exceptions.BotoCoreError as exc:
                raise FetchError(f"{type(exc).__name__}: {exc}") from None
            elapsed = time.monotonic() - start
            if attempt >= opts.max_attempts or elapsed >= opts.deadline:
                raise FetchError(f"{reason}; gave up after {attempt} attempts in {elapsed:.1f} s")
            if throttled:
                # The pacer now spaces every worker's calls; a short jitter is enough.
                delay = random.uniform(0, min(opts.max_delay, opts.base_delay))
            else:
                # Full jitter: spreads retries of many workers apart.
                delay = random.uniform(0, min(opts.max_delay, opts.base_delay * 2 ** (attempt - 1)))
            log.info("%s %s: %s; retrying in %.2f s", region, operation, reason, delay)
            time.sleep(delay)

    # -- the scan --------------------------------------------------------------------------
    def regions(self) -> tuple[list[str], list[InputError], bool]:
        requested = list(self.options.regions)
        if any(r == "all" for r in requested):
            partition = self.session.get_partition_for_region(self.session.region_name or "us-east-1")
            return sorted(self.session.get_available_regions("ec2", partition)), [], True
        if not requested:
            if not self.session.region_name:
                return [], [InputError("--region", "no region: pass --region or set AWS_REGION")], False
            requested = [self.session.region_name]
        known = {
            r for p in self.session.get_available_partitions() for r in self.session.get_available_regions("ec2", p)
        }
        errors = []
        if not (self.options.endpoint_url or _endpoint_from_env()):
            for region in requested:
                if region not in known:
                    errors.append(InputError(f"region {region}", "unknown region"))
        return [r for r in dict.fromkeys(requested) if not any(e.input == f"region {r}" for e in errors)], errors, False

    def run(self) -> LoadResult:
        result = LoadResult()
        try:
            if self.options.arns:
                arns = list(dict.fromkeys(self.options.arns))
                self.progress.update(configs_total=len(arns))
                fetch_all([(self, arn) for arn in arns], self.options.max_workers, result, self.progress)
            else:
                regions, errors, all_regions = self.regions()
                result.errors.extend(errors)
                pairs = [(self, region) for region in regions]
                scan_pairs(pairs, self.options.max_workers, result, self.progress, skip_not_enabled=all_regions)
        except FatalAwsError as exc:
            result.errors.append(InputError("aws", str(exc)))
        finally:
            self.progress.close()
        return result

    def _list_region(self, region: str) -> list[str]:
        arns, token = [], None
        while True:
            kwargs: dict[str, Any] = {"maxResults": 100}
            if token:
                kwargs["nextToken"] = token
            page = self._call(region, "list_distribution_configurations", **kwargs)
            arns.extend(s["arn"] for s in page.get("distributionConfigurationSummaryList", []))
            token = page.get("nextToken")
            if not token:
                return arns

    def _fetch_one(self, arn: str) -> tuple[Target, list[InputError]]:
        match = ARN_RE.match(arn)
        if not match:
            raise FetchError("not a distribution configuration ARN")
        region, account = match.group("region"), match.group("account")
        response = self._call(region, "get_distribution_configuration", distributionConfigurationArn=arn)
        config = response.get("distributionConfiguration")
        if not isinstance(config, dict):
            raise FetchError("bad response body: no distributionConfiguration in the answer (malformed or empty JSON)")
        config = json.loads(json.dumps(config, default=str))  # datetimes, if any, as strings
        checked, problems = apimodel.check_types(config)
        name = checked.get("name") if isinstance(checked.get("name"), str) else match.group("name")
        origin = Origin(kind="aws", arn=arn, region=region, account=account)
        source_map = None
        if self.options.snapshot_dir is not None:
            file = _write_snapshot(self.options.snapshot_dir, account, region, name, config)
            display = display_path(file)
            _, spans = loads_with_spans(file.read_text(encoding="utf-8"))
            source_map = SourceMap(file=display, spans=spans, prefix="/distributionConfiguration")
            origin = Origin(kind="aws", file=display, arn=arn, region=region, account=account)
        errors = [InputError(arn, f"{path}: {message}") for path, message in problems]
        return Target(id=arn, name=name, origin=origin, config=checked, source_map=source_map), errors


def _interleave(pairs: list[tuple[LiveScanner, str]]) -> list[tuple[LiveScanner, str]]:
    """Round-robin over accounts, so the pool works on all of them at once."""
    by_account: dict[int, list[tuple[LiveScanner, str]]] = {}
    for pair in pairs:
        by_account.setdefault(id(pair[0]), []).append(pair)
    queues = list(by_account.values())
    out = []
    while queues:
        out.extend(q.pop(0) for q in queues)
        queues = [q for q in queues if q]
    return out


def _region_label(scanner: LiveScanner, region: str) -> str:
    return f"region {scanner.account}/{region}" if scanner.account else f"region {region}"


def scan_pairs(
    pairs: list[tuple[LiveScanner, str]],
    workers: int,
    result: LoadResult,
    progress: _Progress,
    *,
    skip_not_enabled: bool = False,
) -> None:
    """List every (account, region) pair, then fetch every configuration found."""
    progress.update(regions_total=len(pairs))
    found_arns: list[tuple[LiveScanner, str]] = []
    with ThreadPoolExecutor(workers) as pool:
        futures = {
            pool.submit(scanner._list_region, region): (scanner, region) for scanner, region in _interleave(pairs)
        }
        for future in as_completed(futures):
            scanner, region = futures[future]
            try:
                found = future.result()
            except FatalAwsError:
                raise
            except FetchError as exc:
                if skip_not_enabled and "not enabled" in str(exc):
                    log.info("%s skipped: %s", _region_label(scanner, region), exc)
                else:
                    label = _region_label(scanner, region)
                    result.targets.append(_error_target(label, str(exc), region=region, account=scanner.account))
                progress.update(regions_done=1, errors=1)
                continue
            found_arns.extend((scanner, arn) for arn in found)
            progress.update(regions_done=1, configs_total=len(found))
    found_arns.sort(key=lambda pair: pair[1])
    fetch_all(found_arns, workers, result, progress)


def fetch_all(pairs: list[tuple[LiveScanner, str]], workers: int, result: LoadResult, progress: _Progress) -> None:
    """Get every configuration; each ARN ends as a target or an error target, in ARN order."""
    done: dict[str, tuple[Target, list[InputError]]] = {}
    with ThreadPoolExecutor(workers) as pool:
        futures = {pool.submit(scanner._fetch_one, arn): arn for scanner, arn in _interleave(pairs)}
        for future in as_completed(futures):
            arn = futures[future]
            try:
                done[arn] = future.result()
            except FatalAwsError:
                raise
            except FetchError as exc:
                match = ARN_RE.match(arn)
                done[arn] = (
                    _error_target(
                        arn,
                        str(exc),
                        arn=arn,
                        region=match.group("region") if match else None,
                        account=match.group("account") if match else None,
                    ),
                    [],
                )
                progress.update(configs_done=1, errors=1)
                continue
            progress.update(configs_done=1)
    for _, arn in pairs:
        target, errors = done[arn]
        result.targets.append(target)
        result.errors.extend(errors)


def _endpoint_from_env() -> bool:
    return bool(os.environ.get("AWS_ENDPOINT_URL_IMAGEBUILDER") or os.environ.get("AWS_ENDPOINT_URL"))


def _error_target(
    id: str, message: str, *, arn: str | None = None, region: str | None = None, account: str | None = None
) -> Target:
    return Target(
        id=id,
        name=id.rsplit("/", 1)[-1],
        origin=Origin(kind="aws", arn=arn, region=region, account=account),
        error=message,
    )


def _write_snapshot(directory: Path, account: str, region: str, name: str, config: dict) -> Path:
    """Stable, pretty JSON a scheduled job can commit: same config, same bytes."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "configuration"
    path = directory / account / region / f"{safe}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"distributionConfiguration": config}, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def fetch(options: AwsOptions, on_error: Callable[[str], None] | None = None) -> LoadResult:
    """Fetch every configuration the options name; each ends as a target or an error."""
    try:
        scanner = LiveScanner(options)
    except botocore.exceptions.ProfileNotFound as exc:
        result = LoadResult()
        result.errors.append(InputError("--profile", str(exc)))
        return result
    return scanner.run()
