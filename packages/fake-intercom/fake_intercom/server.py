"""A fake Intercom API served over real HTTP on loopback, for tests, benchmarks and the demo.

It speaks the endpoints a tap uses with Intercom's shapes (error.list bodies, rate-limit headers,
the export job lifecycles, `GET /me`) and lets a test inject faults: a status for the next N calls
to a route, latency, a cut-short body. `build()` makes one with every route; this module is the
top of the package: it imports the route modules, none of them imports it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import typing as t
from pathlib import Path

from fake_intercom import events, exports, reporting, workspace
from fake_intercom.core import DEFAULT_RATE_LIMIT, RATE_WINDOW, Server, real_sleep

if t.TYPE_CHECKING:
    from fake_intercom.events import EventsAPI
    from fake_intercom.exports import ExportAPI
    from fake_intercom.reporting import ReportingAPI
    from fake_intercom.workspace import Workspace

#: `build()` keyword arguments of the server itself.
SERVER_OPTIONS = frozenset({"token", "version", "latency", "rate_limit", "rate_window"})


class FakeIntercom(Server):
    """The fake API with every route: message export, contacts and events, reporting, `/me`."""

    exports: ExportAPI
    events: EventsAPI
    reporting: ReportingAPI
    workspace: Workspace

    def add_late_event(
        self,
        contact_id: str,
        name: str,
        *,
        created_at: int | None = None,
        late_by: int | None = None,
        metadata: dict[str, t.Any] | None = None,
    ) -> int:
        """Submit an event that reaches Intercom now with a past `created_at` (or `late_by` s ago).

        Returns its `created_at`. For a contact without events, `events.add_contact` first.
        """
        if (created_at is None) == (late_by is None):
            msg = "give created_at or late_by"
            raise TypeError(msg)
        if created_at is None:
            return self.events.add_late_event(contact_id, name, t.cast("int", late_by), metadata)
        self.events.add_event(contact_id, name, created_at, metadata)
        return created_at


def build(**kwargs: t.Any) -> FakeIntercom:
    """A fake with every route installed; `start` and `end` bound its messages and reports.

    Options: `SERVER_OPTIONS`, `workspace.OPTIONS`, `events.OPTIONS`, `reporting.OPTIONS`,
    `exports.OPTIONS`; anything else is refused.
    """
    known = SERVER_OPTIONS | workspace.OPTIONS | events.OPTIONS | reporting.OPTIONS
    unknown = set(kwargs) - known - exports.OPTIONS - {"start", "end"}
    if unknown or "start" not in kwargs or "end" not in kwargs:
        msg = f"build() needs start and end (unix s); unknown options: {sorted(unknown)}"
        raise TypeError(msg)

    def pick(names: frozenset[str]) -> dict[str, t.Any]:
        return {k: v for k, v in kwargs.items() if k in names}

    span = {"start": kwargs["start"], "end": kwargs["end"]}
    fake = FakeIntercom(**pick(SERVER_OPTIONS))
    fake.workspace = workspace.install(fake, **pick(workspace.OPTIONS))
    fake.events = events.install(fake, **pick(events.OPTIONS))
    fake.exports = exports.install(fake, **span, **pick(exports.OPTIONS))
    fake.reporting = reporting.install(fake, fake.workspace, **span, **pick(reporting.OPTIONS))
    return fake


def options(argv: list[str] | None = None) -> tuple[dict[str, t.Any], argparse.Namespace]:
    """The `fake-intercom` command line: `build()` options, and the command's own (port, URL file)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--url-file", help="write the base URL here once serving")
    parser.add_argument("--token", default="fake-token")
    parser.add_argument("--version", default="2.14", help="the Intercom-Version it accepts")
    parser.add_argument("--days", type=int, default=60, help="days of messages, ending now")
    parser.add_argument("--receipts-per-day", type=int, default=48)
    parser.add_argument("--container", default="zip", choices=["zip", "tar.gz", "csv.gz"])
    parser.add_argument("--contacts", type=int, default=50)
    parser.add_argument("--timezone", default="UTC", help="the workspace's zone (`GET /me`)")
    parser.add_argument(
        "--reporting-csv-timezone", help="write reporting times in this zone (default: --timezone)"
    )
    parser.add_argument("--me-status", type=int, help="answer GET /me with this status (401, 403)")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=DEFAULT_RATE_LIMIT,
        help="requests per --rate-window seconds (0: no limit and no X-RateLimit-* headers)",
    )
    parser.add_argument("--rate-window", type=float, default=RATE_WINDOW)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer")
    args = parser.parse_args(argv)
    end = int(time.time())
    built = {
        "token": args.token,
        "version": args.version,
        "start": end - args.days * 86400,
        "end": end,
        "receipts_per_day": args.receipts_per_day,
        "container": args.container,
        "contacts": args.contacts,
        "timezone": args.timezone,
        "reporting_csv_timezone": args.reporting_csv_timezone,
        "me_status": args.me_status,
        "rate_limit": args.rate_limit or None,
        "rate_window": args.rate_window,
        "latency": args.latency_ms / 1000,
        "invent_kind": True,  # so the demo shows message_other_statistics too
    }
    return built, args


def main(argv: list[str] | None = None) -> None:
    """`fake-intercom`: serve the fake API until interrupted (for the demo and manual tries)."""
    built, args = options(argv)
    fake = build(**built).start(port=args.port)
    if args.url_file:
        Path(args.url_file).write_text(fake.url)
    print(f"fake Intercom API on {fake.url} (token {args.token})", flush=True)  # noqa: T201
    # The demo stops it with SIGTERM: exit through `finally` so the archives it built are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            real_sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
