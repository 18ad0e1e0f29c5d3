"""A fake Intercom API served over real HTTP on loopback, for tests, benchmarks and the demo.

It speaks the endpoints the tap uses with Intercom's shapes (error.list bodies, rate-limit
headers, the export job lifecycle) and lets a test inject faults: a status for the next N calls
to a route, latency, a cut-short body.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import time
import typing as t
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

if t.TYPE_CHECKING:
    from typing_extensions import Self

# Tests patch time.sleep to make the tap's waits instant; the server keeps real time.
_real_sleep = time.sleep
_real_time = time.time


@dataclass
class Request:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: t.Any

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        return self.query.get(name, [default])[0]


@dataclass
class Response:
    """What a route answers: JSON, bytes, or a file streamed from disk."""

    status: int = 200
    body: t.Any = None
    headers: dict[str, str] = field(default_factory=dict)
    file: str | None = None
    content_type: str = "application/json"


@dataclass
class Fault:
    """Answer `times` matching requests with `status` (or cut the body after `truncate` bytes)."""

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


def error_body(code: str, message: str, request_id: str = "req-fake") -> dict[str, t.Any]:
    """Intercom's error.list body."""
    return {
        "type": "error.list",
        "request_id": request_id,
        "errors": [{"code": code, "message": message}],
    }


class RateLimiter:
    """Intercom-style fixed windows: `limit` requests per `window` seconds, with headers."""

    def __init__(self, limit: int, window: float = 10.0) -> None:
        """Allow `limit` requests per window."""
        self.limit = limit
        self.window = window
        self.lock = threading.Lock()
        self.window_start = _real_time()
        self.used = 0
        self.rejected = 0

    def take(self) -> tuple[bool, dict[str, str]]:
        """Count one request; say whether it is allowed and the headers to send."""
        with self.lock:
            now = _real_time()
            if now - self.window_start >= self.window:
                self.window_start = now - (now - self.window_start) % self.window
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
                "X-RateLimit-Reset": f"{reset:.3f}"
                if self.window < 1
                else str(int(reset) + (reset % 1 > 0)),
            }
            return allowed, headers


Route = t.Callable[[Request, re.Match[str]], Response]


class FakeIntercom:
    """The fake API: routes, auth, version check, rate limit, faults and a request log."""

    def __init__(
        self,
        token: str = "fake-token",
        version: str = "2.14",
        latency: float = 0.0,
        rate_limit: int | None = None,
        rate_window: float = 10.0,
    ) -> None:
        """Configure the token and API version it accepts, and its latency and rate limit."""
        self.token = token
        self.version = version
        self.latency = latency
        self.limiter = RateLimiter(rate_limit, rate_window) if rate_limit else None
        self.routes: list[tuple[str, re.Pattern[str], Route]] = []
        self.faults: list[Fault] = []
        self.log: list[Request] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.exports: t.Any = None  # set by fake_intercom.exports.install
        self.events: t.Any = None  # set by fake_intercom.events.install
        self.reporting: t.Any = None  # set by fake_intercom.reporting.install

    # -- configuration ----------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Route) -> None:
        """Serve `method` requests whose path fully matches `pattern` with `handler`."""
        self.routes.append((method, re.compile(pattern), handler))

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
        assert self.server is not None, "start() the fake first"  # noqa: S101
        host, port = self.server.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{port}"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeIntercom:
        """Serve on a background thread."""
        fake = self

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
        if self.exports is not None:
            self.exports.close()
        if self.reporting is not None:
            self.reporting.close()

    def __enter__(self) -> Self:
        """Start on entry when not started yet."""
        if not self.server:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop on exit."""
        self.stop()

    def handle(self, req: Request) -> Response:
        """Answer one request: log, latency, auth, version, faults, rate limit, route."""
        with self.lock:
            self.log.append(req)
        if self.latency:
            _real_sleep(self.latency)
        rate_headers: dict[str, str] = {}
        if self.limiter:
            allowed, rate_headers = self.limiter.take()
            if not allowed:
                return Response(
                    429, error_body("rate_limit_exceeded", "Rate Limit Exceeded"), rate_headers
                )
        refused = self._check_credentials(req, rate_headers)
        if refused:
            return refused
        fault = self._take_fault(req)
        if fault and fault.drop:
            return Response(0)
        if fault and fault.truncate is None:
            if fault.delay:
                _real_sleep(fault.delay)
            return Response(fault.status, fault.body, {**rate_headers, **fault.headers})
        resp = self._route(req)
        if resp is None:
            return Response(
                404, error_body("not_found", f"No route {req.method} {req.path}"), rate_headers
            )
        resp.headers = {**rate_headers, **resp.headers}
        if fault:
            resp.headers["X-Fake-Truncate"] = str(fault.truncate)
        return resp

    def _route(self, req: Request) -> Response | None:
        for method, pattern, handler in self.routes:
            if method == req.method and (match := pattern.fullmatch(req.path)):
                return handler(req, match)
        return None

    def _check_credentials(self, req: Request, rate_headers: dict[str, str]) -> Response | None:
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return Response(401, error_body("unauthorized", "Access Token Invalid"), rate_headers)
        if req.headers.get("intercom-version") != self.version:
            msg = f"Requested version {req.headers.get('intercom-version')!r} is not {self.version}"
            return Response(400, error_body("intercom_version_invalid", msg), rate_headers)
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
    api: FakeIntercom
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the body waits for the
    # client's delayed ACK, adding ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002
        """Stay quiet: tests read `FakeIntercom.log` instead."""

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
        assert resp.file is not None  # noqa: S101
        size = Path(resp.file).stat().st_size
        chunked = resp.headers.get("Transfer-Encoding") == "chunked"
        self.send_response(resp.status)
        self.send_header("Content-Type", "application/octet-stream")
        if not chunked:
            self.send_header("Content-Length", str(size))
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.end_headers()
        sent = 0
        with Path(resp.file).open("rb") as fh:
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


def build(**kwargs: t.Any) -> FakeIntercom:
    """A fake with every route installed: exports, contacts, events and reporting."""
    # Imported here: those modules import this one for FakeIntercom, Request and Response.
    from tap_intercom_export.fake_intercom import events, exports, reporting  # noqa: PLC0415

    fake = FakeIntercom(**{k: v for k, v in kwargs.items() if k in _FAKE_ARGS})
    events.install(fake, **{k: v for k, v in kwargs.items() if k in events.OPTIONS})
    exports.install(
        fake,
        **{
            k: v
            for k, v in kwargs.items()
            if k not in _FAKE_ARGS and k not in events.OPTIONS and k not in reporting.OPTIONS
        },
    )
    reporting.install(
        fake, **{k: v for k, v in kwargs.items() if k in reporting.OPTIONS or k in ("start", "end")}
    )
    return fake


_FAKE_ARGS = {"token", "version", "latency", "rate_limit", "rate_window"}


def main(argv: list[str] | None = None) -> None:
    """`fake-intercom`: serve the fake API until interrupted (for the demo and manual tries)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="fake-token")
    parser.add_argument("--days", type=int, default=60, help="days of messages, ending now")
    parser.add_argument("--receipts-per-day", type=int, default=48)
    parser.add_argument("--container", default="zip", choices=["zip", "tar.gz", "csv.gz"])
    parser.add_argument("--url-file", help="write the base URL here once serving")
    args = parser.parse_args(argv)
    end = int(time.time())
    fake = build(
        token=args.token,
        start=end - args.days * 86400,
        end=end,
        receipts_per_day=args.receipts_per_day,
        container=args.container,
        invent_kind=True,  # so the demo shows message_other_statistics too
    ).start(port=args.port)
    if args.url_file:
        with open(args.url_file, "w") as fh:  # noqa: PTH123
            fh.write(fake.url)
    print(f"fake Intercom API on {fake.url} (token {args.token})", flush=True)  # noqa: T201
    # The demo stops it with SIGTERM: exit through `finally` so the archives it built are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            _real_sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
