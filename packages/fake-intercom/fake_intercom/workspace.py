"""The fake workspace's identity: `GET /me`, whose `app.timezone` is the zone reporting times use.

`GET /me` answers the admin the token belongs to with the embedded app (Intercom's "workspace"):
`{"type": "admin", ..., "app": {"type": "app", "id_code", "name", "created_at", "secure",
"identity_verification", "timezone", "region"}, "avatar": {...}, "has_inbox_seat"}`, as in the
"Identify an admin" example of the OpenAPI descriptions 2.14, 2.16 and Preview
(github.com/intercom/Intercom-OpenAPI, schema `admin_with_app`). `timezone` is an IANA name.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from zoneinfo import ZoneInfo

from fake_intercom.core import Request, Response, Server, error_body

#: `build()` keyword arguments that configure the workspace.
OPTIONS = frozenset({"timezone", "reporting_csv_timezone", "me_status"})

#: What `GET /me` answers a token that may not read it (a status set with `me_status`).
_REFUSALS = {
    HTTPStatus.UNAUTHORIZED: ("unauthorized", "Access Token Invalid"),
    HTTPStatus.FORBIDDEN: ("forbidden", "Not authorized to access resource"),
}


@dataclass
class Workspace:
    """The workspace's zone, the zone its reporting CSVs are written in, and `/me`'s answer."""

    #: The IANA zone `/me` names (Intercom's `app.timezone`).
    timezone: str = "UTC"
    #: The zone reporting CSV times are written in; None: `timezone`, as Intercom does.
    reporting_csv_timezone: str | None = None
    #: Answer `/me` with this status instead (401, 403: a token without that permission).
    me_status: int | None = None
    created_at: int = 1_577_836_800  # 2020-01-01T00:00:00Z
    zones: dict[str, ZoneInfo] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Fail now, not at the first request, on a zone name zoneinfo does not know."""
        self.zone(self.timezone)
        self.zone(self.reporting_csv_timezone or self.timezone)

    def zone(self, name: str) -> ZoneInfo:
        """A zone by its IANA name (`UTC` included)."""
        if name not in self.zones:
            self.zones[name] = ZoneInfo(name)
        return self.zones[name]

    @property
    def csv_zone(self) -> ZoneInfo:
        """The zone reporting CSV times are written in."""
        return self.zone(self.reporting_csv_timezone or self.timezone)

    def local_text(self, unix: int) -> str:
        """A reporting CSV time: `YYYY-MM-DD HH:MM:SS` in the CSV zone, without the zone."""
        return datetime.fromtimestamp(unix, self.csv_zone).strftime("%Y-%m-%d %H:%M:%S")

    @staticmethod
    def utc_text(unix: int) -> str:
        """The instant as RFC 3339 in UTC (`2023-11-05T06:30:00+00:00`): the truth of a time."""
        return datetime.fromtimestamp(unix, timezone.utc).isoformat()

    def me(self, _req: Request, _m: t.Any) -> Response:
        """GET /me: the admin and its app, or the refusal `me_status` asks for."""
        if self.me_status:
            code, message = _REFUSALS.get(
                HTTPStatus(self.me_status), ("server_error", "Something went wrong")
            )
            return Response(self.me_status, error_body(code, message))
        return Response(
            200,
            {
                "type": "admin",
                "id": "991267459",
                "email": "admin@example.com",
                "name": "Fake Admin",
                "email_verified": True,
                "app": {
                    "type": "app",
                    "id_code": "fakews",
                    "name": "Fake workspace",
                    "created_at": self.created_at,
                    "secure": False,
                    "identity_verification": False,
                    "timezone": self.timezone,
                    "region": "US",
                },
                "avatar": {"type": "avatar", "image_url": None},
                "has_inbox_seat": True,
            },
        )


def install(fake: Server, **kwargs: t.Any) -> Workspace:
    """Add `GET /me` to a fake; return the workspace (see OPTIONS)."""
    workspace = Workspace(**kwargs)
    fake.route("GET", r"/me", workspace.me)
    return workspace
