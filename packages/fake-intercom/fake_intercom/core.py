"""The fake's HTTP server: routes, auth, API versions, rate limit, injected faults, a request log.

Route modules (exports, events, reporting, workspace) import this one and add their routes to a
`Server`; nothing here knows them.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import typing as t
import uuid
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

if t.TYPE_CHECKING:
    from typing_extensions import Self

# Tests patch time.sleep to make the tap's waits instant; the server keeps real time.
real_sleep = time.sleep
real_time = time.time

#: Intercom allows 10,000 calls a minute per app, spread evenly over 10-second windows:
#: 1,667 per window (its own example: 1,000 a minute is "167 per 10-second window").
#: https://developers.intercom.com/docs/references/rest-api/errors/rate-limiting
DEFAULT_RATE_LIMIT = 1667
RATE_WINDOW = 10.0

#: API versions the fake speaks by default; Preview is Intercom's name for the next one
#: (OpenAPI `descriptions/0`), newer than any numbered version.
PREVIEW = "Preview"
_UNNUMBERED = {"preview": (99, 0), "unstable": (99, 0)}

#: Paths of the fake's own admin routes (tests and scripts add data between runs).
ADMIN_PREFIX = "/_fake/"


def version_key(version: str) -> tuple[int, int]:
    """`2.14` -> (2, 14); Preview and Unstable sort after every numbered version."""
    named = _UNNUMBERED.get(version.lower())
    if named:
        return named
    major, _, minor = version.partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        return (0, 0)


@dataclass
class Response:
    """What a route answers: JSON, bytes, or a file streamed from disk."""

    status: int = 200
    body: t.Any = None
    headers: dict[str, str] = field(default_factory=dict)
    file: str | None = None
    content_type: str = "application/json"


@dataclass
class Request:
    """One request as the fake saw it, and the answer it got."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: t.Any
    response: Response | None = None

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        return self.query.get(name, [default])[0]


@dataclass
class Fault:
    """Answer `times` matching requests with `status` (or cut the body after `truncate` bytes).

    An injected 429 carries only the headers given here: it stands for a window the test
    describes, not for the fake's own rate limiter.
    """

    method: str
    pattern: re.Pattern[str]
    status: int = 500
    body: t.Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    truncate: int | None = None
    delay: float = 0.0
    drop: bool = False


def encoded_copy(path: str | Path, encoding: str) -> Path:
    """A file as sent with `Content-Encoding: gzip` or `deflate` (built once next to it)."""
    src_path = Path(path)
    out = src_path.with_name(f"{src_path.name}.{encoding}")
    if not out.exists():
        with src_path.open("rb") as src, out.open("wb") as dst:
            packer = zlib.compressobj(6, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
            while chunk := src.read(1 << 20):
                dst.write(packer.compress(chunk))
            dst.write(packer.flush())
    return out


def error_body(code: str, message: str, request_id: str | None = None) -> dict[str, t.Any]:
    """Intercom's error.list body (its `request_id` is a UUID in the OpenAPI `error` schema)."""
    return {
        "type": "error.list",
        "request_id": request_id or str(uuid.uuid4()),
        "errors": [{"code": code, "message": message}],
    }


class RateLimiter:
    """Intercom-style fixed windows: `limit` requests per `window` seconds, with headers."""

    def __init__(self, limit: int, window: float = RATE_WINDOW) -> None:
        """Allow `limit` requests per window; windows start on multiples of `window`."""
        self.limit = limit
        self.window = window
        self.lock = threading.Lock()
        self.window_start = self._start_of(real_time())
        self.used = 0
        self.rejected = 0

    def _start_of(self, now: float) -> float:
        return now - now % self.window

    def take(self) -> tuple[bool, dict[str, str]]:
        """Count one request; say whether it is allowed and the headers to send."""
        with self.lock:
            now = real_time()
            if now - self.window_start >= self.window:
                self.window_start = self._start_of(now)
                self.used = 0
            allowed = self.used < self.limit
            if allowed:
                self.used += 1
            else:
                self.rejected += 1
            reset = self.window_start + self.window
            headers = {
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(max(self.limit - self.used, 0)),
                # Unix seconds; sub-second windows (tests) need the fraction to be usable.
                "X-RateLimit-Reset": f"{reset:.3f}"
                if self.window < 1
                else str(int(reset) + (reset % 1 > 0)),
            }
            return allowed, headers


Route = t.Callable[[Request, re.Match[str]], Response]


class Server:
    """Routes, auth, version check, rate limit, faults and a request log, served on loopback."""

    def __init__(
        self,
        token: str = "fake-token",
        version: str = "2.14",
        latency: float = 0.0,
        rate_limit: int | None = DEFAULT_RATE_LIMIT,
        rate_window: float = RATE_WINDOW,
    ) -> None:
        """Accept `token` and `version`; answer after `latency` s; `rate_limit` None: no limit."""
        self.token = token
        self.version = version
        self.latency = latency
        self.limiter = RateLimiter(rate_limit, rate_window) if rate_limit else None
        self.routes: list[tuple[str, re.Pattern[str], Route]] = []
        self.admin_routes: list[tuple[str, re.Pattern[str], Route]] = []
        self.faults: list[Fault] = []
        self.log: list[Request] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self._on_stop: list[t.Callable[[], None]] = []

    # -- configuration ----------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Route) -> None:
        """Serve `method` requests whose path fully matches `pattern` with `handler`."""
        self.routes.append((method, re.compile(pattern), handler))

    def admin_route(self, method: str, name: str, handler: Route) -> None:
        """Serve `/_fake/<name>`: no version check, no rate limit, not in the log."""
        self.admin_routes.append((method, re.compile(re.escape(ADMIN_PREFIX + name)), handler))

    def on_stop(self, cleanup: t.Callable[[], None]) -> None:
        """Run `cleanup` when the fake stops (route modules remove what they built on disk)."""
        self._on_stop.append(cleanup)

    def at_least(self, major: int, minor: int) -> bool:
        """Whether the API version served is `major.minor` or later (Preview is later)."""
        return version_key(self.version) >= (major, minor)

    def inject(self, method: str, pattern: str, status: int = 500, **kwargs: t.Any) -> Fault:
        """Make the next matching request(s) fail; see `Fault`."""
        fault = Fault(method, re.compile(pattern), status, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def calls(self, method: str, pattern: str) -> list[Request]:
        """Requests received so far that match."""
        rx = re.compile(pattern)
        return [r for r in self.log if r.method == method and rx.fullmatch(r.path)]

    # -- serving ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        if self.server is None:
            msg = "start() the fake first"
            raise RuntimeError(msg)
        host, port = self.server.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{port}"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        """Serve on a background thread."""
        fake: Server = self

        class Handler(_Handler):
            api = fake

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and remove what the routes built on disk."""
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        for cleanup in self._on_stop:
            cleanup()

    def __enter__(self) -> Self:
        """Start on entry when not started yet."""
        if not self.server:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop on exit."""
        self.stop()

    def handle(self, req: Request) -> Response:
        """Answer one request and keep the answer with it in the log."""
        if req.path.startswith(ADMIN_PREFIX):
            return self._admin(req)
        with self.lock:
            self.log.append(req)
        req.response = self._answer(req)
        return req.response

    def _answer(self, req: Request) -> Response:
        if self.latency:
            real_sleep(self.latency)
        # Intercom sends no rate-limit headers to a request without valid credentials.
        refused = self._check_credentials(req)
        if refused:
            return refused
        rate_headers: dict[str, str] = {}
        if self.limiter:
            allowed, rate_headers = self.limiter.take()
            if not allowed:
                msg = f"Exceeded rate limit of {self.limiter.limit} in {self.limiter.window:g}_seconds"
                return Response(429, error_body("rate_limit_exceeded", msg), rate_headers)
        fault = self._take_fault(req)
        if fault and fault.drop:
            return Response(0)
        if fault and fault.truncate is None:
            if fault.delay:
                real_sleep(fault.delay)
            sent = {} if fault.status == 429 else rate_headers
            return Response(fault.status, fault.body, {**sent, **fault.headers})
        resp = self._route(self.routes, req)
        if resp is None:
            return Response(
                404, error_body("not_found", f"No route {req.method} {req.path}"), rate_headers
            )
        resp.headers = {**rate_headers, **resp.headers}
        if fault:
            resp.headers["X-Fake-Truncate"] = str(fault.truncate)
        return resp

    def _admin(self, req: Request) -> Response:
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return Response(401, error_body("unauthorized", "Access Token Invalid"))
        resp = self._route(self.admin_routes, req)
        return resp or Response(404, error_body("not_found", f"No admin route {req.path}"))

    @staticmethod
    def _route(routes: list[tuple[str, re.Pattern[str], Route]], req: Request) -> Response | None:
        for method, pattern, handler in routes:
            if method == req.method and (match := pattern.fullmatch(req.path)):
                return handler(req, match)
        return None

    def _check_credentials(self, req: Request) -> Response | None:
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return Response(401, error_body("unauthorized", "Access Token Invalid"))
        if req.headers.get("intercom-version") != self.version:
            msg = f"Requested version {req.headers.get('intercom-version')!r} is not {self.version}"
            return Response(400, error_body("intercom_version_invalid", msg))
        return None

    def _take_fault(self, req: Request) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if (
                    fault.times > 0
                    and fault.method == req.method
                    and fault.pattern.fullmatch(req.path)
                ):
                    fault.times -= 1
                    return fault
        return None


class _Handler(BaseHTTPRequestHandler):
    api: Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the body waits for the
    # client's delayed ACK, adding ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002
        """Stay quiet: tests read `Server.log` instead."""

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        req = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        resp = self.api.handle(req)
        if resp.status == 0:  # an injected dropped connection: no answer at all
            self.close_connection = True
            return
        truncate = resp.headers.pop("X-Fake-Truncate", None)
        if resp.file:
            self._send_file(resp, int(truncate) if truncate else None)
            return
        content_type = resp.content_type
        if isinstance(resp.body, bytes):  # a gateway's own page, not the API's JSON
            payload, content_type = resp.body, "text/html"
        else:
            payload = b"" if resp.body is None else json.dumps(resp.body).encode()
        self.send_response(resp.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _send_file(self, resp: Response, truncate: int | None) -> None:
        if resp.file is None:
            return
        try:
            with Path(resp.file).open("rb") as fh:
                self._send_open_file(resp, fh, truncate)
        except FileNotFoundError:
            # A test stopped the fake (and removed its archives) while this request was on its way.
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def _send_open_file(self, resp: Response, fh: t.BinaryIO, truncate: int | None) -> None:
        size = os.fstat(fh.fileno()).st_size
        chunked = resp.headers.get("Transfer-Encoding") == "chunked"
        self.send_response(resp.status)
        self.send_header("Content-Type", "application/octet-stream")
        if not chunked:
            self.send_header("Content-Length", str(size))
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.end_headers()
        sent = 0
        while chunk := fh.read(1 << 16 if chunked else 1 << 20):
            if truncate is not None and sent + len(chunk) > truncate:
                self._write(chunk[: truncate - sent], chunked=chunked)
                self.wfile.flush()
                self.close_connection = True
                return
            self._write(chunk, chunked=chunked)
            sent += len(chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _write(self, data: bytes, *, chunked: bool) -> None:
        if chunked and data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        elif data:
            self.wfile.write(data)

    do_GET = _serve  # noqa: N815
    do_POST = _serve  # noqa: N815
