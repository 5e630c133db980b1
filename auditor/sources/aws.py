"""Live configurations from AWS: list every region, get every configuration.

Imported only for ``--aws`` / ``--arn``, so the offline path never loads boto3.

Retries are ours, whatever ``AWS_RETRY_MODE`` says: botocore's standard and adaptive
modes do not retry Image Builder's ``CallRateLimitExceededException`` (HTTP 429), so
clients come from ``make_client`` with retries off and every call goes through
``call_api``, which retries throttling, 5xx and connection errors with jittered
exponential backoff. A shared ``Pacer`` slows every worker down after a 429 and speeds
up again on success, so a throttled scan converges instead of hammering.

Nothing the service (or a proxy in front of it) answers is trusted: ``make_client``
checks every 2xx body before botocore parses it (botocore reads an HTML page, an empty
or a truncated body as an empty answer, and a list that is a string crashes its
parser), a listing whose ``nextToken`` comes back again ends with an error, and each
call has one overall deadline (``CallPolicy.deadline``, ``--call-deadline``), not just
botocore's per-read timeout that a server sending a byte every few seconds never trips.
``make_client`` and ``call_api`` serve any AWS service, not only Image Builder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import random
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import boto3
import botocore.config
import botocore.exceptions
import botocore.parsers

from auditor import apimodel
from auditor.model import InputError, Origin, SourceMap, Target
from auditor.sources import LoadResult, display_path
from auditor.sources.jsonpos import loads_with_spans, lone_surrogate

log = logging.getLogger("ib_audit.aws")

# The region and account become snapshot directory names: nothing but what AWS uses.
ARN_RE = re.compile(
    r"^arn:(?P<partition>[a-z-]+):imagebuilder:(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]+):(?P<account>[0-9]{12}):"
    r"distribution-configuration/(?P<name>[^\x00-\x1f]+)$"
)
# RequestLimitExceeded is EC2's (an HTTP 503), for the account-context calls.
THROTTLE_CODES = {"CallRateLimitExceededException", "ThrottlingException", "TooManyRequestsException", "Throttling"}
THROTTLE_CODES |= {"RequestLimitExceeded"}
SERVER_CODES = {"ServiceUnavailableException", "ServiceException", "InternalServerError", "InternalFailure"}
CONNECTION_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectTimeoutError,
)
NOT_ENABLED_CODES = {"UnrecognizedClientException", "InvalidClientTokenId", "AuthFailure"}
DEFAULT_CALL_DEADLINE = 120.0  # seconds; README "Limits"
MAX_PAGES = 10_000  # a listing longer than this (a million configurations) is not an answer
IMAGEBUILDER_REGIONS_PARAMETER = "/aws/service/global-infrastructure/services/imagebuilder/regions"
ENABLED_OPT_IN = {"opt-in-not-required", "opted-in"}  # EC2 DescribeRegions: enabled regions


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
    deadline: float = DEFAULT_CALL_DEADLINE  # seconds one call may take in all, retries included
    progress: bool = False

    @property
    def policy(self) -> CallPolicy:
        return CallPolicy(self.max_attempts, self.base_delay, self.max_delay, self.deadline)


@dataclass(frozen=True)
class CallPolicy:
    """How one API call is retried and bounded.

    ``deadline`` is the most one call may take in all: every attempt, every backoff and
    every byte of every body. An attempt still running when it passes is abandoned.
    """

    max_attempts: int = 8
    base_delay: float = 0.25
    max_delay: float = 8.0
    deadline: float = DEFAULT_CALL_DEADLINE


class FetchError(Exception):
    """A call failed for good; the message says why, in one line."""


class FatalAwsError(FetchError):
    """The scan cannot go on at all (no credentials)."""


class BadResponse(FetchError):
    """A 2xx answer whose body is not the operation's JSON (raised before botocore parses it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"bad response body: {reason}")


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


# -- what a response body must be --------------------------------------------------------------
def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null" if value is None else type(value).__name__


_CONTAINERS = {"structure": (dict, "an object"), "map": (dict, "an object"), "list": (list, "a list")}


def _shape_problem(shape, value: Any, where: str) -> str | None:
    """The first container in ``value`` whose JSON type is not the one ``shape`` declares.

    Scalars are left alone (botocore passes them through; callers check what they use);
    a wrong container type would crash botocore's parser.
    """
    expected = _CONTAINERS.get(shape.type_name)
    if expected is None or value is None:
        return None
    if not isinstance(value, expected[0]):
        return f"{where or 'the body'} is {_kind(value)}, not {expected[1]}"
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if member.serialization.get("location"):
                continue  # a header or the status code, not part of the body
            key = member.serialization.get("name", name)
            problem = _shape_problem(member, value.get(key), f"{where}.{key}" if where else key)
            if problem:
                return problem
    elif shape.type_name == "list":
        for index, item in enumerate(value):
            problem = _shape_problem(shape.member, item, f"{where}[{index}]")
            if problem:
                return problem
    else:
        for key, item in value.items():
            problem = _shape_problem(shape.value, item, f"{where}.{key}")
            if problem:
                return problem
    return None


def check_response_body(response_dict: dict, operation_model, **_: Any) -> None:
    """botocore ``before-parse`` hook: a 2xx body of a JSON protocol must be that operation's JSON.

    botocore itself reads an HTML page or a truncated body as ``{"message": ...}`` and an
    empty one as ``{}``, which would make a failed listing look like zero configurations.
    """
    if operation_model.service_model.protocol not in ("json", "rest-json"):
        return
    if not 200 <= response_dict.get("status_code", 0) < 300:
        return
    body = response_dict.get("body") or b""
    if not body.strip():
        raise BadResponse("empty")
    # Judged by the body, not the Content-Type: some endpoints (moto, proxies) label
    # good JSON text/html, and an HTML error page is what matters.
    if body.lstrip()[:1] == b"<":
        raise BadResponse("an HTML page, not JSON")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise BadResponse("not valid JSON (truncated?)") from None
    if lone_surrogate(body.decode("utf-8", "replace")) is not None:
        raise BadResponse("a string holds half a UTF-16 pair, which is not text")
    shape = operation_model.output_shape
    problem = _shape_problem(shape, document, "") if shape is not None else None
    if problem is None and not isinstance(document, dict):
        problem = f"the body is {_kind(document)}, not an object"
    if problem:
        raise BadResponse(problem)


def client_config(max_pool_connections: int = 10) -> botocore.config.Config:
    """botocore settings for ib-audit's clients: retries off (call_api retries, whatever
    AWS_RETRY_MODE says) and per-read timeouts (call_api bounds the whole call)."""
    return botocore.config.Config(
        retries={"total_max_attempts": 1},
        connect_timeout=10,
        read_timeout=30,
        max_pool_connections=max_pool_connections,
    )


def make_client(
    session: boto3.session.Session,
    service: str,
    region: str,
    *,
    endpoint_url: str | None = None,
    max_pool_connections: int = 10,
):
    """A boto3 client for ``call_api``: botocore's retries off (ours apply) and bodies checked."""
    config = client_config(max_pool_connections)
    client = session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)
    client.meta.events.register("before-parse", check_response_body)
    return client


# -- one call: retries, pacing, one overall deadline ------------------------------------------
T = TypeVar("T")


class _DeadlinePassed(Exception):
    pass


def _bounded(fn: Callable[[], T], seconds: float) -> T:
    """``fn()``, or _DeadlinePassed after ``seconds``.

    botocore's timeouts bound each socket read, not a whole answer; the only way to
    bound the call is to wait for it elsewhere. The attempt runs in a daemon thread,
    which is abandoned (and dies with the process) if it outlives its deadline.
    """
    done = threading.Event()
    box: dict[str, Any] = {}

    def attempt() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=attempt, name="ib-audit-call", daemon=True).start()
    if not done.wait(max(seconds, 0.0)):
        raise _DeadlinePassed
    if "error" in box:
        raise box["error"]
    return box["value"]


def call_api(
    client,
    operation: str,
    *,
    policy: CallPolicy = CallPolicy(),
    pacer: Pacer | None = None,
    label: str = "",
    **kwargs: Any,
) -> dict:
    """Call ``client.<operation>(**kwargs)`` with ib-audit's retries, pacing and deadline.

    Throttling, 5xx and connection errors are retried with jittered backoff (a shared
    ``pacer`` also slows other callers after a 429); everything else fails at once. The
    whole call, retries included, ends within ``policy.deadline`` seconds. Returns the
    parsed response or raises FetchError (FatalAwsError without credentials) whose
    message is one line; any unexpected exception becomes a FetchError too.
    """
    start = time.monotonic()
    attempt = 0
    method = getattr(client, operation)
    while True:
        attempt += 1
        throttled = False
        if pacer is not None:
            pacer.wait()
        log.info("%s %s %s (attempt %d)", label, operation, kwargs.get("distributionConfigurationArn", ""), attempt)
        remaining = policy.deadline - (time.monotonic() - start)
        try:
            response = _bounded(lambda: method(**kwargs), remaining)
            if pacer is not None:
                pacer.on_success()
            return response
        except _DeadlinePassed:
            raise FetchError(
                f"no complete answer within {policy.deadline:g} s (the call deadline; --call-deadline changes it)"
            ) from None
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            message = error.get("Message") or code
            if code in THROTTLE_CODES or status == 429:
                if pacer is not None:
                    pacer.on_throttle()
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
        except FetchError:
            raise  # BadResponse from the body check: the same answer again would not help
        except botocore.parsers.ResponseParserError:
            raise FetchError("bad response body: the service's answer is not valid JSON") from None
        except (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError) as exc:
            raise FatalAwsError(
                f"AWS credentials not found ({exc}); configure a profile, environment variables or a role"
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}") from None
        except Exception as exc:  # a parser or SDK bug on an odd answer: an error for this call only
            raise FetchError(f"unexpected {type(exc).__name__}: {exc}") from None
        elapsed = time.monotonic() - start
        if throttled:
            # The pacer now spaces every worker's calls; a short jitter is enough.
            delay = random.uniform(0, min(policy.max_delay, policy.base_delay))
        else:
            # Full jitter: spreads retries of many workers apart.
            delay = random.uniform(0, min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1)))
        if attempt >= policy.max_attempts or elapsed + delay >= policy.deadline:
            raise FetchError(f"{reason}; gave up after {attempt} attempts in {elapsed:.1f} s")
        log.info("%s %s: %s; retrying in %.2f s", label, operation, reason, delay)
        time.sleep(delay)


def paginate(fetch_page: Callable[[str | None], dict], token_key: str = "nextToken") -> Iterator[dict]:
    """Every page of a listing; ``fetch_page(token)`` gets one.

    A token that comes back again would loop forever, and a listing past MAX_PAGES is
    not an answer: both end the listing with a FetchError.
    """
    seen: set[str] = set()
    token: str | None = None
    for number in range(1, MAX_PAGES + 1):
        page = fetch_page(token)
        yield page
        token = page.get(token_key)
        if token is None or token == "":
            return
        if not isinstance(token, str):
            raise FetchError(f"bad response body: {token_key} is {_kind(token)}, not a string")
        if token in seen:
            shown = token if len(token) <= 40 else token[:40] + "..."
            raise FetchError(f"pagination does not end: {token_key} {shown!r} came back on page {number}")
        seen.add(token)
    raise FetchError(f"pagination does not end: more than {MAX_PAGES:,} pages")


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


# Clients and sessions are built under one lock for the whole process: a session is not
# thread-safe, and the sessions of an organization scan share one model loader. Reentrant,
# so that building something under it may build something else.
CLIENT_LOCK = threading.RLock()


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
        self._clients: dict[tuple[str, str], Any] = {}
        self.progress = progress or _Progress(options.progress)
        self.slots = threading.BoundedSemaphore(max_in_flight or options.max_workers)

    # -- clients and calls -------------------------------------------------------------
    def client(self, region: str):
        """This thread's Image Builder client for ``region`` (a subclass may serve another service)."""
        return self.service_client("imagebuilder", region)

    def service_client(self, service: str, region: str):
        """The client for (``service``, ``region``), built on first use and shared by every thread.

        botocore clients are thread-safe once built ("Multithreading or multiprocessing
        with clients", boto3's guide); sessions are not, so clients are built under one
        lock. One client per thread instead cost a client (about 3-6 ms of CPU, and a
        fresh connection pool) for every thread that touched a region: 16 workers over
        an organization's 200 account/region pairs built some 1,800 clients.
        """
        key = (service, region)
        client = self._clients.get(key)
        if client is None:
            with CLIENT_LOCK:
                client = self._clients.get(key)
                if client is None:
                    endpoint = self.options.endpoint_url if service == "imagebuilder" else None
                    client = self._clients[key] = make_client(
                        self.session,
                        service,
                        region,
                        endpoint_url=endpoint,
                        max_pool_connections=self.options.max_workers,
                    )
        return client

    def _call(self, region: str, operation: str, service: str | None = None, **kwargs: Any) -> dict:
        """``call_api`` with this account's pacer and bound; ``service`` None: ``self.client``."""
        client = self.client(region) if service is None else self.service_client(service, region)
        with self.slots:  # per-account concurrency, so one account cannot take every worker
            return call_api(
                client,
                operation,
                policy=self.options.policy,
                pacer=self.pacer,
                label=region,
                **kwargs,
            )

    # -- the scan --------------------------------------------------------------------------
    def regions(self) -> tuple[list[str], list[InputError], bool]:
        """The regions to scan, problems naming the region flag, and whether it was ``all``."""
        requested = list(self.options.regions)
        if any(r == "all" for r in requested):
            offered, errors = self.offered_regions()
            enabled, more = self.enabled_regions()
            return sorted(set(offered) & set(enabled) if enabled is not None else offered), errors + more, True
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

    def _home(self) -> tuple[str, str]:
        """The region to ask about regions, and its partition."""
        home = self.session.region_name or "us-east-1"
        try:
            return home, self.session.get_partition_for_region(home)
        except botocore.exceptions.BotoCoreError:
            return home, "aws"

    def _in_partition(self, region: str, partition: str) -> bool:
        try:
            return self.session.get_partition_for_region(region) == partition
        except botocore.exceptions.BotoCoreError:
            return False

    def offered_regions(self) -> tuple[list[str], list[InputError]]:
        """The regions of this partition where Image Builder is offered.

        AWS publishes them as public SSM parameters (``IMAGEBUILDER_REGIONS_PARAMETER``,
        one per region). If they cannot be read, every region botocore knows for EC2
        is used instead, and that is an error: a region could be missing or extra.
        """
        home, partition = self._home()
        try:
            names = []
            for page in paginate(
                lambda token: self._call(
                    home,
                    "get_parameters_by_path",
                    service="ssm",
                    Path=IMAGEBUILDER_REGIONS_PARAMETER,
                    **({"NextToken": token} if token else {}),
                ),
                token_key="NextToken",
            ):
                for parameter in page.get("Parameters") or []:
                    value = parameter.get("Value") if isinstance(parameter, dict) else None
                    if isinstance(value, str):
                        names.append(value)
            if not names:
                raise FetchError(f"no parameters under {IMAGEBUILDER_REGIONS_PARAMETER}")
        except FatalAwsError:
            raise
        except FetchError as exc:
            fallback = sorted(self.session.get_available_regions("ec2", partition))
            return fallback, [
                InputError(
                    "--region all",
                    f"cannot read where Image Builder is offered (ssm:GetParametersByPath): {exc}; "
                    "trying every region of the partition instead",
                )
            ]
        return sorted({n for n in names if self._in_partition(n, partition)}), []

    def enabled_regions(self) -> tuple[list[str] | None, list[InputError]]:
        """The regions enabled for this account (EC2 DescribeRegions), or None if unknown."""
        home, partition = self._home()
        try:
            page = self._call(home, "describe_regions", service="ec2")
        except FatalAwsError:
            raise
        except FetchError as exc:
            return None, [
                InputError(
                    "--region all",
                    f"cannot read the regions enabled for this account (ec2:DescribeRegions): {exc}; "
                    "a region that is not enabled is skipped when it says so",
                )
            ]
        enabled = []
        for region in page.get("Regions") or []:
            name = region.get("RegionName") if isinstance(region, dict) else None
            status = region.get("OptInStatus", "opt-in-not-required") if isinstance(region, dict) else None
            if isinstance(name, str) and status in ENABLED_OPT_IN and self._in_partition(name, partition):
                enabled.append(name)
        return sorted(enabled), []

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

    def _list_region(self, region: str) -> tuple[list[str], list[str]]:
        """Every ARN listed in ``region`` (once each), and problems with single summaries."""
        arns, problems = [], []
        pages = paginate(
            lambda token: self._call(
                region, "list_distribution_configurations", maxResults=100, **({"nextToken": token} if token else {})
            )
        )
        for number, page in enumerate(pages, 1):
            for index, summary in enumerate(page.get("distributionConfigurationSummaryList") or []):
                where = f"distributionConfigurationSummaryList[{index}]" + (f" (page {number})" if number > 1 else "")
                arn = summary.get("arn") if isinstance(summary, dict) else None
                if arn is None:
                    problems.append(f"{where} has no arn; skipped")
                elif not isinstance(arn, str):
                    problems.append(f"{where}: arn is {_kind(arn)}, not a string; skipped")
                elif not ARN_RE.match(arn):
                    problems.append(f"{where}: {arn[:200]!r} is not a distribution configuration ARN; skipped")
                else:
                    arns.append(arn)
        return list(dict.fromkeys(arns)), problems

    def _fetch_one(self, arn: str) -> tuple[Target, list[InputError]]:
        match = ARN_RE.match(arn)
        if not match:
            raise FetchError("not a distribution configuration ARN")
        region, account = match.group("region"), match.group("account")
        response = self._call(region, "get_distribution_configuration", distributionConfigurationArn=arn)
        config = response.get("distributionConfiguration")
        if not isinstance(config, dict):
            raise FetchError("bad response body: no distributionConfiguration in the answer")
        config = json.loads(json.dumps(config, default=str))  # datetimes, if any, as strings
        checked, problems = apimodel.check_types(config)
        name = checked.get("name") if isinstance(checked.get("name"), str) else match.group("name")
        origin = Origin(kind="aws", arn=arn, region=region, account=account)
        errors = [InputError(arn, f"{path}: {message}") for path, message in problems]
        source_map = None
        if self.options.snapshot_dir is not None:
            try:
                file, text = write_snapshot(self.options.snapshot_dir, account, region, match.group("name"), config)
            except OSError as exc:
                errors.append(InputError(arn, f"cannot write snapshot: {exc.strerror or exc}"))
            else:
                display = display_path(file)
                _, spans = loads_with_spans(text)
                source_map = SourceMap(file=display, spans=spans, prefix="/distributionConfiguration")
                origin = Origin(kind="aws", file=display, arn=arn, region=region, account=account)
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
    """List every (account, region) pair, then fetch every configuration found.

    A listing that fails is an error target for its region; anything unexpected inside
    a worker is too, never an exception that loses the other regions' results. Each
    listing that completes without a problem is recorded in ``result.listed``.
    """
    progress.update(regions_total=len(pairs))
    found_arns: list[tuple[LiveScanner, str]] = []
    with ThreadPoolExecutor(workers) as pool:
        futures = {
            pool.submit(scanner._list_region, region): (scanner, region) for scanner, region in _interleave(pairs)
        }
        for future in as_completed(futures):
            scanner, region = futures[future]
            label = _region_label(scanner, region)
            try:
                found, problems = future.result()
            except FatalAwsError:
                raise
            except Exception as exc:
                message = str(exc) if isinstance(exc, FetchError) else f"unexpected {type(exc).__name__}: {exc}"
                if skip_not_enabled and isinstance(exc, FetchError) and "not enabled" in message:
                    log.info("%s skipped: %s", label, message)
                else:
                    result.targets.append(_error_target(label, message, region=region, account=scanner.account))
                progress.update(regions_done=1, errors=1)
                continue
            result.errors.extend(InputError(label, problem) for problem in problems)
            if not problems:  # a skipped summary could be any configuration: not a complete listing
                result.listed[(scanner.account, region)] = frozenset(found)
            found_arns.extend((scanner, arn) for arn in found)
            progress.update(regions_done=1, configs_total=len(found))
    found_arns.sort(key=lambda pair: pair[1])
    fetch_all(found_arns, workers, result, progress)


def fetch_all(pairs: list[tuple[LiveScanner, str]], workers: int, result: LoadResult, progress: _Progress) -> None:
    """Get every configuration; each ARN ends as one target or one error target, in ARN order."""
    pairs = list({arn: (scanner, arn) for scanner, arn in reversed(pairs)}.values())[::-1]  # first of each ARN
    done: dict[str, tuple[Target, list[InputError]]] = {}
    with ThreadPoolExecutor(workers) as pool:
        futures = {pool.submit(scanner._fetch_one, arn): arn for scanner, arn in _interleave(pairs)}
        for future in as_completed(futures):
            arn = futures[future]
            try:
                done[arn] = future.result()
            except FatalAwsError:
                raise
            except Exception as exc:
                message = str(exc) if isinstance(exc, FetchError) else f"unexpected {type(exc).__name__}: {exc}"
                match = ARN_RE.match(arn)
                done[arn] = (
                    _error_target(
                        arn,
                        message,
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


_SAFE_NAME_CHAR = re.compile(r"[A-Za-z0-9_.-]")
MAX_SNAPSHOT_NAME = 200  # bytes before ".json"; file systems allow 255


def snapshot_file_name(name: str) -> str:
    """A file name for a configuration name: distinct names give distinct files.

    Letters, digits, ``_``, ``-`` and ``.`` stay (a leading ``.`` does not: no hidden
    files, no ``..``); every other character is percent-encoded as UTF-8 bytes, ``%``
    included, so the mapping is one-to-one. A name longer than MAX_SNAPSHOT_NAME keeps
    its start and gets ``~`` and a hash of the whole name (``~`` is always encoded
    otherwise).
    """
    encoded = "".join(
        char
        if _SAFE_NAME_CHAR.match(char) and not (i == 0 and char == ".")
        else "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        for i, char in enumerate(name)
    )
    if len(encoded) > MAX_SNAPSHOT_NAME:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        encoded = f"{encoded[: MAX_SNAPSHOT_NAME - 17]}~{digest}"
    return f"{encoded}.json"


def write_snapshot(directory: Path, account: str, region: str, name: str, config: dict) -> tuple[Path, str]:
    """Write ``DIR/<account>/<region>/<name>.json`` atomically; return its path and text.

    Stable, pretty JSON a scheduled job can commit: same config, same bytes. Nothing
    below ``directory`` is followed through a symbolic link (a committed link cannot
    make ib-audit write outside it): directories are opened with O_NOFOLLOW relative to
    their parent, and the file is written under a temporary name and renamed over
    whatever was there, a link included. Raises OSError naming the problem.
    """
    text = json.dumps({"distributionConfiguration": config}, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    file_name = snapshot_file_name(name)
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
    where = directory
    opened: list[int] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)  # the directory the user named may itself be a link
        opened.append(os.open(directory, flags))
        for part in (account, region):
            where = where / part
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o777, dir_fd=opened[-1])
            try:
                opened.append(os.open(part, flags | os.O_NOFOLLOW, dir_fd=opened[-1]))
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise OSError(exc.errno, "not a directory (a symbolic link is not followed)") from None
                raise
        folder = opened[-1]
        where = where / file_name
        temporary = f".{file_name}.{os.getpid()}.{threading.get_ident()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
                handle.write(text)
            os.rename(temporary, file_name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=folder)
            raise
    except OSError as exc:
        raise OSError(exc.errno, f"{where}: {exc.strerror or exc}") from None
    finally:
        for fd in opened:
            os.close(fd)
    return directory / account / region / file_name, text


def fetch(options: AwsOptions, on_error: Callable[[str], None] | None = None) -> LoadResult:
    """Fetch every configuration the options name; each ends as a target or an error."""
    try:
        scanner = LiveScanner(options)
    except botocore.exceptions.ProfileNotFound as exc:
        result = LoadResult()
        result.errors.append(InputError("--profile", str(exc)))
        return result
    return scanner.run()
