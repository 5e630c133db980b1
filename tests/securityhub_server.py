"""A local AWS Security Hub endpoint speaking the rest-json wire protocol.

moto's Security Hub imports and updates by Id, but it ignores GetFindings filters, has
no BatchUpdateFindings, never answers FailedFindings and never throttles. This server
answers the three calls the sink makes, routes and shapes from botocore's model:

- ``POST /findings/import`` (BatchImportFindings) -> ``FailedCount``, ``SuccessCount``,
  ``FailedFindings``;
- ``POST /findings`` (GetFindings) with ``Filters`` (EQUALS, PREFIX, NOT_EQUALS on string
  attributes), ``MaxResults`` and ``NextToken``;
- ``PATCH /findings/batchupdate`` (BatchUpdateFindings) -> ``ProcessedFindings``,
  ``UnprocessedFindings``.

Every request body is checked with botocore's own validator for the operation's input
shape (and the documented maximums), so anything the client sends that AWS would reject
as malformed is a 400 ``InvalidInputException`` here too.

Behaviour follows the AWS documentation ("BatchImportFindings for finding providers",
"Compliance" and "Workflow" in the ASFF reference): findings are stored per account and
region; AwsAccountId must be the caller's account and ProductArn a product of the
caller's region; an import with an existing Id updates it; Note, UserDefinedFields,
VerificationState and Workflow are taken on creation only; Compliance PASSED resolves a
NEW or NOTIFIED workflow, PASSED -> FAILED or ARCHIVED -> ACTIVE reopens it. With
``aggregator`` set, GetFindings in that region also sees the account's other regions,
as a finding-aggregation region does. Faults: throttling (429), server errors (500),
rejected findings, hubs not enabled (401), latency, a token-bucket rate limit.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

from asff_checks import validate_request

SCOPE_RE = re.compile(r"Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/securityhub/aws4_request")
ROUTES = {
    ("POST", "/findings/import"): "BatchImportFindings",
    ("POST", "/findings"): "GetFindings",
    ("PATCH", "/findings/batchupdate"): "BatchUpdateFindings",
}
CUSTOMER_FIELDS = ("Note", "UserDefinedFields", "VerificationState", "Workflow")


@dataclass
class Faults:
    latency: float = 0.0
    throttle_first: int = 0  # the first N calls answer 429
    server_error_first: int = 0  # then N calls answer 500
    rate_limit: float = 0.0  # token bucket refill per second per (account, region); 0 = unlimited
    burst: int = 30
    reject_ids: dict[str, tuple[str, str]] = field(default_factory=dict)  # Id -> (ErrorCode, ErrorMessage)
    unprocessed_ids: dict[str, tuple[str, str]] = field(default_factory=dict)  # in BatchUpdateFindings
    disabled: set[tuple[str, str]] = field(default_factory=set)  # (account, region) without Security Hub


class _Bucket:
    def __init__(self, rate: float, capacity: int) -> None:
        self.rate, self.capacity, self.tokens, self.stamp = rate, capacity, float(capacity), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class SecurityHubServer:
    def __init__(self, faults: Faults | None = None, default_account: str = "111122223333") -> None:
        self.faults = faults or Faults()
        self.default_account = default_account
        self.accounts: dict[str, str] = {}  # access key id -> account
        self.aggregator: str | None = None
        self.findings: dict[tuple[str, str], dict[tuple[str, str], dict]] = {}  # (acct, region) -> (arn, id) -> f
        self.calls: Counter[str] = Counter()
        self.requests: list[dict] = []  # {"operation", "account", "region", "body", "status"}
        self.statuses: Counter[int] = Counter()
        self.lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"app": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- helpers for tests -------------------------------------------------------------------
    def stored(self, account: str, region: str) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(f) for f in self.findings.get((account, region), {}).values()]

    def put(self, account: str, region: str, finding: dict) -> None:
        """Store a finding as if another product (or an earlier run) had imported it."""
        with self.lock:
            stored = {"Region": region, "RecordState": "ACTIVE", "Workflow": {"Status": "NEW"}, **finding}
            self.findings.setdefault((account, region), {})[(finding["ProductArn"], finding["Id"])] = stored

    # -- operations ------------------------------------------------------------------------
    def batch_import(self, account: str, region: str, body: dict) -> dict:
        failed = []
        store = self.findings.setdefault((account, region), {})
        for finding in body["Findings"]:
            fid = finding["Id"]
            product = f":securityhub:{region}:"
            if fid in self.faults.reject_ids:
                code, message = self.faults.reject_ids[fid]
                failed.append({"Id": fid, "ErrorCode": code, "ErrorMessage": message})
            elif finding["AwsAccountId"] != account:
                failed.append(
                    {
                        "Id": fid,
                        "ErrorCode": "InvalidInput",
                        "ErrorMessage": f"AwsAccountId {finding['AwsAccountId']} is not the caller's account {account}",
                    }
                )
            elif product not in finding["ProductArn"]:
                failed.append(
                    {"Id": fid, "ErrorCode": "InvalidInput", "ErrorMessage": "ProductArn is not in this region"}
                )
            else:
                self._upsert(store, region, copy.deepcopy(finding))
        return {
            "FailedCount": len(failed),
            "SuccessCount": len(body["Findings"]) - len(failed),
            "FailedFindings": failed,
        }

    def _upsert(self, store: dict, region: str, finding: dict) -> None:
        key = (finding["ProductArn"], finding["Id"])
        old = store.get(key)
        provider = finding.setdefault("FindingProviderFields", {})
        for name in ("Severity", "Types"):
            if name not in provider and name in finding:
                provider[name] = finding[name]
        finding["Region"] = region
        finding.setdefault("RecordState", "ACTIVE")
        if old is None:
            finding.setdefault("Workflow", {"Status": "NEW"})
            finding["ProcessedAt"] = finding["UpdatedAt"]
            finding["Severity"] = finding.get("Severity") or provider.get("Severity")
            finding["Types"] = finding.get("Types") or provider.get("Types")
            new = finding
        else:
            if finding["UpdatedAt"] < old["UpdatedAt"]:
                return  # an older update than what is held: Security Hub keeps the newer
            new = {**old, **{k: v for k, v in finding.items() if k not in CUSTOMER_FIELDS}}
            # Top-level severity and types follow the provider's unless a customer changed them.
            if not old.get("_customer_severity"):
                new["Severity"] = provider.get("Severity", old.get("Severity"))
            new["Types"] = old.get("Types") if old.get("_customer_types") else provider.get("Types", old.get("Types"))
            status = old["Workflow"]["Status"]
            was, now = old.get("Compliance", {}).get("Status"), new.get("Compliance", {}).get("Status")
            if (old["RecordState"] == "ARCHIVED" and new["RecordState"] == "ACTIVE") or (
                was == "PASSED" and now in ("FAILED", "WARNING", "NOT_AVAILABLE") and status in ("NOTIFIED", "RESOLVED")
            ):
                status = "NEW"
            new["Workflow"] = {"Status": status}
            new["ProcessedAt"] = finding["UpdatedAt"]
        if new.get("Compliance", {}).get("Status") == "PASSED" and new["Workflow"]["Status"] in ("NEW", "NOTIFIED"):
            new["Workflow"] = {"Status": "RESOLVED"}
        new["WorkflowState"] = new["Workflow"]["Status"]
        store[key] = new

    def get_findings(self, account: str, region: str, body: dict) -> dict:
        regions = [region]
        if self.aggregator == region:
            regions = sorted({r for (a, r) in self.findings if a == account})
        pool = [f for r in regions for f in self.findings.get((account, r), {}).values()]
        matching = [f for f in pool if _matches(f, body.get("Filters") or {})]
        start = int(body.get("NextToken") or 0)
        size = int(body.get("MaxResults") or 100)
        page = [{k: v for k, v in f.items() if not k.startswith("_")} for f in matching[start : start + size]]
        out: dict = {"Findings": copy.deepcopy(page)}
        if start + size < len(matching):
            out["NextToken"] = str(start + size)
        return out

    def batch_update(self, account: str, region: str, body: dict) -> dict:
        processed, unprocessed = [], []
        store = self.findings.get((account, region), {})
        for ident in body["FindingIdentifiers"]:
            key = (ident["ProductArn"], ident["Id"])
            if ident["Id"] in self.faults.unprocessed_ids:
                code, message = self.faults.unprocessed_ids[ident["Id"]]
                unprocessed.append({"FindingIdentifier": ident, "ErrorCode": code, "ErrorMessage": message})
                continue
            if key not in store:
                unprocessed.append(
                    {"FindingIdentifier": ident, "ErrorCode": "FindingNotFound", "ErrorMessage": "Finding not found"}
                )
                continue
            finding = store[key]
            if "Workflow" in body:
                finding["Workflow"] = dict(body["Workflow"])
                finding["WorkflowState"] = body["Workflow"]["Status"]
            if "Note" in body:
                finding["Note"] = {**body["Note"], "UpdatedAt": "2026-01-01T00:00:00.000Z"}
            if "Severity" in body:
                finding["Severity"] = {**finding.get("Severity", {}), **body["Severity"]}
                finding["_customer_severity"] = True
            processed.append(ident)
        return {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}

    def fault(self, number: int, account: str, region: str) -> tuple[int, str, str] | None:
        f = self.faults
        if (account, region) in f.disabled:
            return 401, "InvalidAccessException", f"Account {account} is not subscribed to AWS Security Hub"
        if f.rate_limit:
            with self.lock:
                bucket = self._buckets.setdefault((account, region), _Bucket(f.rate_limit, f.burst))
                allowed = bucket.take()
            if not allowed:
                return 429, "TooManyRequestsException", "Rate exceeded"
        if number <= f.throttle_first:
            return 429, "TooManyRequestsException", "Rate exceeded"
        if number <= f.throttle_first + f.server_error_first:
            return 500, "InternalException", "Internal service failure"
        return None


def _value(finding: dict, name: str):
    if name.startswith("Resource") and name != "RecordState":
        resource = (finding.get("Resources") or [{}])[0]
        return resource.get({"ResourceId": "Id", "ResourceType": "Type", "ResourceRegion": "Region"}.get(name, ""))
    if name == "ComplianceStatus":
        return finding.get("Compliance", {}).get("Status")
    if name == "WorkflowStatus":
        return finding.get("Workflow", {}).get("Status")
    return finding.get(name)


def _matches(finding: dict, filters: dict) -> bool:
    for name, conditions in filters.items():
        value = _value(finding, name)
        positive = [c for c in conditions if c["Comparison"] in ("EQUALS", "PREFIX")]
        negative = [c for c in conditions if c["Comparison"] in ("NOT_EQUALS", "PREFIX_NOT_EQUALS")]
        if not isinstance(value, str):
            if positive:
                return False
            continue
        if positive and not any(
            value == c["Value"] if c["Comparison"] == "EQUALS" else value.startswith(c["Value"]) for c in positive
        ):
            return False
        if any(
            value == c["Value"] if c["Comparison"] == "NOT_EQUALS" else value.startswith(c["Value"]) for c in negative
        ):
            return False
    return True


class _Handler(BaseHTTPRequestHandler):
    app: SecurityHubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: dict, error_type: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.end_headers()
        self.wfile.write(data)
        with self.app.lock:
            self.app.statuses[status] += 1

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        operation = ROUTES.get((method, urlparse(self.path).path))
        if operation is None:
            self._send(404, {"Message": f"No route for {method} {self.path}"}, "ResourceNotFoundException")
            return
        if self.app.faults.latency:
            time.sleep(self.app.faults.latency)
        match = SCOPE_RE.search(self.headers.get("Authorization", ""))
        if not match:
            self._send(403, {"Message": "Missing SigV4 Authorization"}, "AccessDeniedException")
            return
        account = self.app.accounts.get(match.group("key"), self.app.default_account)
        region = match.group("region")
        body = json.loads(raw or b"{}")
        record = {"operation": operation, "account": account, "region": region, "body": copy.deepcopy(body)}
        with self.app.lock:
            self.app.calls[operation] += 1
            number = sum(self.app.calls.values())
            self.app.requests.append(record)
        fault = self.app.fault(number, account, region)
        if fault:
            record["status"], code, message = fault
            self._send(record["status"], {"Message": message}, code)
            return
        problems = validate_request(operation, body)
        if problems:
            record["status"] = 400
            self._send(400, {"Message": "; ".join(problems)}, "InvalidInputException")
            return
        record["status"] = 200
        with self.app.lock:
            if operation == "BatchImportFindings":
                answer = self.app.batch_import(account, region, body)
            elif operation == "GetFindings":
                answer = self.app.get_findings(account, region, body)
            else:
                answer = self.app.batch_update(account, region, body)
        self._send(200, answer)

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")
