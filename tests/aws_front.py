"""A local AWS endpoint in front of moto (server mode) for the account-context tests.

moto does not implement EC2's image block public access calls, and ignores S3's
``ExpectedBucketOwner``. This endpoint answers those the way AWS does and passes every
other request, unchanged, to moto:

- ``GetImageBlockPublicAccessState`` (EC2 query protocol: a form-encoded POST with
  ``Action=...``, an XML answer in the ``http://ec2.amazonaws.com/doc/2016-11-15/``
  namespace, shapes from botocore's model) from ``bpa[(account, region)]``;
- ``HeadBucket`` with the ``x-amz-expected-bucket-owner`` header: 403 when the bucket
  belongs to another account ("Verifying bucket ownership with bucket owner
  condition", Amazon S3 User Guide);
- any call named in ``deny`` answers AccessDenied in its service's own error format
  (EC2 ``UnauthorizedOperation`` XML, IAM/STS ``ErrorResponse`` XML, JSON
  ``__type`` for KMS/ECR/Organizations, a bare 403 for S3 HEAD).

Every request is counted per (account, "service:Operation"), so tests can assert each
distinct fact was fetched once. The account comes from the SigV4 access key (an
assumed role's key is resolved through ``resolve_account``), the region and service
from the credential scope, the operation from ``X-Amz-Target``, the query ``Action``
or, for S3, the method.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

SCOPE_RE = re.compile(r"Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
JSON_SERVICES = {"kms", "ecr", "organizations"}
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "server", "date"}


class AwsFront:
    """Starts on 127.0.0.1:0; ``url`` is what the tests put in ``AWS_ENDPOINT_URL_<SERVICE>``."""

    def __init__(
        self,
        moto_url: str,
        resolve_account: Callable[[str], str | None] | None = None,
        default_account: str = "123456789012",
    ) -> None:
        target = urlparse(moto_url)
        self.moto = (target.hostname, target.port)
        self.resolve_account = resolve_account
        self.default_account = default_account
        self.bpa: dict[tuple[str, str], str] = {}  # (account, region) -> state; default "unblocked"
        self.bucket_owner: Callable[[str], str | None] | None = None  # bucket name -> owning account
        # (account, region, "service:Operation", needle): "*" matches any account or
        # region; a non-empty needle must appear in the request's path or body.
        self.deny: set[tuple[str, str, str, str]] = set()
        self.latency = 0.0  # seconds added to every call (as a real endpoint's round trip)
        self.calls: Counter[tuple[str, str]] = Counter()  # (account, "service:Operation")
        self.requests: Counter[tuple[str, str, str, str]] = Counter()  # ... and region, request text
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"app": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def count(self, operation: str, account: str | None = None) -> int:
        """How many times ``operation`` ("kms:DescribeKey") was called (in ``account``)."""
        return sum(n for (acct, op), n in self.calls.items() if op == operation and account in (None, acct))

    def denied(self, account: str, region: str, operation: str, request: str) -> bool:
        return any(
            a in ("*", account) and r in ("*", region) and op == operation and needle in request
            for a, r, op, needle in self.deny
        )


class _Handler(BaseHTTPRequestHandler):
    app: AwsFront
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    # -- the request ----------------------------------------------------------------------
    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        scope = SCOPE_RE.search(self.headers.get("Authorization", ""))
        key, region, service = (
            (scope.group("key"), scope.group("region"), scope.group("service")) if scope else ("", "", "")
        )
        account = (self.app.resolve_account(key) if self.app.resolve_account else None) or self.app.default_account
        operation = f"{service}:{self._operation(service, body)}"
        request = self.path + body.decode("utf-8", "replace") + self.headers.get("x-amz-expected-bucket-owner", "")
        if self.app.latency:
            time.sleep(self.app.latency)
        with self.app.lock:
            self.app.calls[(account, operation)] += 1
            self.app.requests[(account, region, operation, request)] += 1
        if self.app.denied(account, region, operation, request):
            self._deny(service, operation)
        elif operation == "ec2:GetImageBlockPublicAccessState":
            self._image_block_public_access(account, region)
        elif operation == "s3:HeadBucket" and self._wrong_owner():
            self._reply(403, b"", {})
        else:
            self._forward(body)

    def _operation(self, service: str, body: bytes) -> str:
        target = self.headers.get("X-Amz-Target")
        if target:
            return target.rsplit(".", 1)[-1]
        if service == "s3":
            return "HeadBucket" if self.command == "HEAD" and urlparse(self.path).path.count("/") == 1 else self.command
        form = parse_qs(body.decode("utf-8", "replace")) if body else parse_qs(urlparse(self.path).query)
        return form.get("Action", ["?"])[0]

    def _wrong_owner(self) -> bool:
        expected = self.headers.get("x-amz-expected-bucket-owner")
        if not expected or self.app.bucket_owner is None:
            return False
        owner = self.app.bucket_owner(urlparse(self.path).path.strip("/"))
        return owner is not None and owner != expected

    # -- answers ---------------------------------------------------------------------------
    def _reply(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _image_block_public_access(self, account: str, region: str) -> None:
        state = self.app.bpa.get((account, region), "unblocked")
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<GetImageBlockPublicAccessStateResponse xmlns="{EC2_NS}">'
            f"<requestId>{uuid.uuid4()}</requestId>"
            f"<imageBlockPublicAccessState>{state}</imageBlockPublicAccessState>"
            "<managedBy>account</managedBy>"
            "</GetImageBlockPublicAccessStateResponse>"
        )
        self._reply(200, xml.encode(), {"Content-Type": "text/xml;charset=UTF-8"})

    def _deny(self, service: str, operation: str) -> None:
        request_id = str(uuid.uuid4())
        message = f"User is not authorized to perform: {operation}"
        if service == "s3":
            self._reply(403, b"", {"x-amz-request-id": request_id})
        elif service in JSON_SERVICES:
            body = f'{{"__type": "AccessDeniedException", "message": "{message}"}}'.encode()
            self._reply(400, body, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": request_id})
        elif service == "ec2":
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                f"<Code>UnauthorizedOperation</Code><Message>{message}</Message>"
                f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
            )
            self._reply(403, xml.encode(), {"Content-Type": "text/xml;charset=UTF-8"})
        else:  # IAM, STS: the query protocol's ErrorResponse
            xml = (
                "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            )
            self._reply(403, xml.encode(), {"Content-Type": "text/xml"})

    def _forward(self, body: bytes) -> None:
        connection = http.client.HTTPConnection(*self.app.moto, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        headers["Host"] = f"{self.app.moto[0]}:{self.app.moto[1]}"
        headers["Content-Length"] = str(len(body))
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            passed = {k: v for k, v in response.getheaders() if k.lower() not in HOP_HEADERS}
            self._reply(response.status, data, passed)
        finally:
            connection.close()
