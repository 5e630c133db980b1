"""A local EC2 Image Builder endpoint speaking the real rest-json wire protocol.

moto does not implement Image Builder. This server answers the two calls ib-audit
makes, the way the service does (routes and shapes from botocore's model):

- ``POST /ListDistributionConfigurations`` with a JSON body (``maxResults``,
  ``nextToken``) returning ``distributionConfigurationSummaryList`` and ``nextToken``;
- ``GET /GetDistributionConfiguration?distributionConfigurationArn=...`` returning
  ``{"requestId", "distributionConfiguration"}``.

Errors are a status code, an ``x-amzn-ErrorType`` header and a ``{"message"}`` body.
The region comes from the SigV4 credential scope in ``Authorization``; the account
from the access key id when it is registered in ``accounts`` (see ``for_account``),
else the default account. Faults are injected per instance: latency, page size, 429
bursts, 5xx, 403 on chosen ARNs, malformed bodies, a token-bucket rate limit, and the
hostile answers of ``HOSTILE_MODES`` per region (list) or ARN (get): a service, proxy or
network that misbehaves in ways botocore does not notice by itself.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

# What a hostile answer looks like, by mode (see Faults.hostile_lists / hostile_gets).
HOSTILE_MODES = {
    "repeat-token": "list: every page says nextToken 'again', so a naive paginator never ends",
    "html": "200 with an HTML page (a proxy's or load balancer's), not JSON",
    "empty": "200 with an empty body",
    "truncated": "200, no Content-Length, half the JSON, then the connection closes",
    "trickle": "200 and headers at once, then the body one byte every trickle_interval seconds",
    "reset": "the connection is reset (RST) before any answer",
    "string-list": "list: distributionConfigurationSummaryList is a string",
    "no-arn": "list: the first summary has no arn",
    "number-arn": "list: the first summary's arn is a number",
    "duplicate-arns": "list: every summary twice",
    "list-config": "get: distributionConfiguration is a list",
    "string-config": "get: distributionConfiguration is a string",
}

SCOPE_RE = re.compile(r"Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/imagebuilder/aws4_request")


@dataclass
class Faults:
    latency: float = 0.0  # seconds added to every call
    page_size: int = 25  # the most the list call returns per page
    throttle_first: int = 0  # the first N calls answer 429
    throttle_every: int = 0  # every Nth call answers 429
    server_error_first: int = 0  # the first N calls answer 500
    forbidden_arns: set[str] = field(default_factory=set)  # 403 on get
    missing_arns: set[str] = field(default_factory=set)  # 404 on get
    malformed_arns: set[str] = field(default_factory=set)  # a body that is not JSON
    forbidden_regions: set[str] = field(default_factory=set)  # 403 on list
    rate_limit: float = 0.0  # token bucket refill per second; 0 = unlimited
    burst: int = 10  # token bucket capacity
    account_rate_limit: float = 0.0  # a separate token bucket per account, as AWS limits are
    hostile_lists: dict[str, str] = field(default_factory=dict)  # region -> HOSTILE_MODES key (list)
    hostile_gets: dict[str, str] = field(default_factory=dict)  # ARN -> HOSTILE_MODES key (get)
    trickle_interval: float = 0.5


class _TokenBucket:
    def __init__(self, rate: float, capacity: int) -> None:
        self.rate, self.capacity = rate, capacity
        self.tokens = float(capacity)
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class ImageBuilderServer:
    """Holds configurations per (account, region) and serves them on 127.0.0.1."""

    def __init__(self, faults: Faults | None = None, default_account: str = "111122223333") -> None:
        self.faults = faults or Faults()
        self.default_account = default_account
        self.accounts: dict[str, str] = {}  # access key id -> account
        self.resolve_account = None  # or a function: access key id -> account (assumed roles)
        self.configs: dict[tuple[str, str], dict[str, dict]] = {}  # (account, region) -> arn -> config
        self.calls: Counter[str] = Counter()
        self.listed_regions: Counter[str] = Counter()  # region -> list calls answered
        self.status_counts: Counter[int] = Counter()
        self.lock = threading.Lock()
        self._bucket = None
        self._account_buckets: dict[str, _TokenBucket] = {}
        self._server: ThreadingHTTPServer | None = None

    # -- data ------------------------------------------------------------------------
    def add(self, region: str, config: dict, account: str | None = None) -> str:
        account = account or self.default_account
        name = config["name"]
        arn = f"arn:aws:imagebuilder:{region}:{account}:distribution-configuration/{name.lower()}"
        stored = {"arn": arn, **{k: v for k, v in config.items() if k != "arn"}}
        stored.setdefault("dateCreated", "2026-01-01T00:00:00.000Z")
        self.configs.setdefault((account, region), {})[arn] = stored
        return arn

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> str:
        if self.faults.rate_limit:
            self._bucket = _TokenBucket(self.faults.rate_limit, self.faults.burst)
        handler = type("Handler", (_Handler,), {"app": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- request handling ---------------------------------------------------------------
    def _fault(self, call_number: int, account: str) -> tuple[int, str, str] | None:
        f = self.faults
        if f.account_rate_limit:
            with self.lock:
                bucket = self._account_buckets.setdefault(account, _TokenBucket(f.account_rate_limit, f.burst))
            if not bucket.take():
                return 429, "CallRateLimitExceededException", "Rate exceeded"
        if self._bucket is not None and not self._bucket.take():
            return 429, "CallRateLimitExceededException", "Rate exceeded"
        if call_number <= f.throttle_first or (f.throttle_every and call_number % f.throttle_every == 0):
            return 429, "CallRateLimitExceededException", "Rate exceeded"
        if call_number <= f.throttle_first + f.server_error_first:
            return 500, "ServiceException", "Internal failure"
        return None


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a reset or abandoned connection is the point of some faults, not news


class _Handler(BaseHTTPRequestHandler):
    app: ImageBuilderServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes | dict, error_type: str | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error_type:
            self.send_header("x-amzn-ErrorType", f"{error_type}:http://internal.amazon.com/coral/")
        self.end_headers()
        self.wfile.write(data)
        with self.app.lock:
            self.app.status_counts[status] += 1

    def _hostile(self, mode: str, body: dict) -> None:
        """Answer ``body`` the way ``mode`` misbehaves."""
        if mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if mode == "html":
            data = b"<!DOCTYPE html><html><body><h1>Service Unavailable</h1></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if mode == "empty":
            self._send(200, b"")
            return
        data = json.dumps(body).encode()
        if mode == "truncated":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        if mode == "trickle":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for i in range(len(data)):
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    time.sleep(self.app.faults.trickle_interval)
            except OSError:
                self.close_connection = True
            return
        self._send(200, body)

    def _error(self, status: int, error_type: str, message: str) -> None:
        self._send(status, {"message": message}, error_type)

    def _identity(self) -> tuple[str, str] | None:
        match = SCOPE_RE.search(self.headers.get("Authorization", ""))
        if not match:
            return None
        key = match.group("key")
        account = self.app.resolve_account(key) if self.app.resolve_account else None
        return account or self.app.accounts.get(key, self.app.default_account), match.group("region")

    def _begin(self, name: str) -> tuple[str, str] | None:
        length = int(self.headers.get("Content-Length") or 0)
        self._body = self.rfile.read(length) if length else b""
        if self.app.faults.latency:
            time.sleep(self.app.faults.latency)
        with self.app.lock:
            self.app.calls[name] += 1
            number = sum(self.app.calls.values())
        identity = self._identity()
        if identity is None:
            self._error(403, "ForbiddenException", "Missing SigV4 Authorization header")
            return None
        fault = self.app._fault(number, identity[0])
        if fault:
            self._error(*fault)
            return None
        return identity

    def do_POST(self) -> None:
        if urlparse(self.path).path != "/ListDistributionConfigurations":
            self._error(404, "ResourceNotFoundException", f"No route for POST {self.path}")
            return
        identity = self._begin("ListDistributionConfigurations")
        if identity is None:
            return
        account, region = identity
        if region in self.app.faults.forbidden_regions:
            self._error(403, "ForbiddenException", "You are not authorized to perform this operation")
            return
        with self.app.lock:
            self.app.listed_regions[region] += 1
        mode = self.app.faults.hostile_lists.get(region)
        request = json.loads(self._body or b"{}")
        limit = min(int(request.get("maxResults") or 100), self.app.faults.page_size)
        arns = sorted(self.app.configs.get((account, region), {}))
        token = request.get("nextToken")
        start = int(token) if token and token.isdigit() else 0
        page = arns[start : start + limit]
        configs = self.app.configs[(account, region)] if page else {}
        summaries = [
            {
                "arn": arn,
                "name": configs[arn]["name"],
                "dateCreated": configs[arn]["dateCreated"],
                "regions": sorted({d["region"] for d in configs[arn].get("distributions", []) if "region" in d}),
            }
            for arn in page
        ]
        body = {"requestId": str(uuid.uuid4()), "distributionConfigurationSummaryList": summaries}
        if start + limit < len(arns):
            body["nextToken"] = str(start + limit)
        if mode == "repeat-token":
            body["nextToken"] = "again"
        elif mode == "string-list":
            body["distributionConfigurationSummaryList"] = "arn:aws:imagebuilder:oops"
        elif mode == "no-arn" and summaries:
            del summaries[0]["arn"]
        elif mode == "number-arn" and summaries:
            summaries[0]["arn"] = 1234
        elif mode == "duplicate-arns":
            body["distributionConfigurationSummaryList"] = [s for s in summaries for _ in (1, 2)]
        self._hostile(mode or "", body)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path != "/GetDistributionConfiguration":
            self._error(404, "ResourceNotFoundException", f"No route for GET {url.path}")
            return
        identity = self._begin("GetDistributionConfiguration")
        if identity is None:
            return
        account, region = identity
        arn = parse_qs(url.query).get("distributionConfigurationArn", [""])[0]
        faults = self.app.faults
        if arn in faults.forbidden_arns:
            self._error(403, "ForbiddenException", f"User is not authorized to access {arn}")
            return
        if arn in faults.malformed_arns:
            self._send(200, b'{"requestId": "x", "distributionConfiguration": {"name": ')
            return
        config = self.app.configs.get((account, region), {}).get(arn)
        if config is None or arn in faults.missing_arns:
            self._error(404, "ResourceNotFoundException", f"The distribution configuration {arn} does not exist")
            return
        mode = faults.hostile_gets.get(arn, "")
        shown = {"list-config": [config], "string-config": json.dumps(config)}.get(mode, config)
        self._hostile(mode, {"requestId": str(uuid.uuid4()), "distributionConfiguration": shown})
