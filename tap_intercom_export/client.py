"""The base stream every Intercom stream shares: URL, auth, headers, errors and backoff."""

from __future__ import annotations

import ipaddress
import time
import typing as t
from decimal import Decimal
from http import HTTPStatus
from urllib.parse import urlsplit

from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.streams import RESTStream

from tap_intercom_export.errors import (
    ConfigError,
    ExportJobActiveError,
    ExportJobFailedError,
    IntercomAPIError,
    IntercomAuthError,
    IntercomNotFoundError,
    IntercomRetriableError,
)
from tap_intercom_export.timeutil import unix

if t.TYPE_CHECKING:
    import requests
    from backoff.types import Details

#: Days before now where a first sync starts when `start_date` is not set.
DEFAULT_START_DAYS = 30

API_HOSTS = {
    "us": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}

# Which token permission each API area needs, so a 401/403 can say what to grant.
# https://developers.intercom.com/docs/build-an-integration/learn-more/authentication/oauth-scopes
_PERMISSIONS = (
    ("/export/reporting_data", "export reporting data (the 'Export reporting data' permission)"),
    ("/download/reporting_data", "export reporting data (the 'Export reporting data' permission)"),
    ("/export/", "export message data (the 'Export message data' permission)"),
    ("/download/", "export message data (the 'Export message data' permission)"),
    ("/events", "read events (the 'Read events' / read_events permission)"),
    ("/contacts", "read contacts (the 'Read and list users and companies' permission)"),
)

# The 429s that are not a rate limit but a lock: Intercom runs one message export job per
# workspace, and up to 5 pending reporting export jobs.
_ACTIVE_JOB_MARKERS = ("pending message data export", "pending reporting dataset export")

MAX_RATE_LIMIT_WAIT = 60.0


def is_loopback(host: str | None) -> bool:
    """Tell whether a host name or address is this machine."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_api_url(config: t.Mapping[str, t.Any]) -> str:
    """Return the API base URL from `api_url` or `region`, refusing unsafe URLs."""
    region = str(config.get("region") or "us").lower()
    if region not in API_HOSTS:
        msg = f"Unknown region {region!r}: set region to one of {', '.join(API_HOSTS)}."
        raise ConfigError(msg)
    url = (config.get("api_url") or API_HOSTS[region]).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return url
    msg = (
        f"api_url {url!r} is not allowed: use an https:// URL "
        "(http:// only for loopback hosts such as a local test server)."
    )
    raise ConfigError(msg)


def _is_number(value: object) -> bool:
    # The SDK reads JSON numbers from config files as Decimal.
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def config_time(config: t.Mapping[str, t.Any], key: str) -> int | None:
    """A date-time setting as unix seconds, with an error that names the setting."""
    value = config.get(key)
    if value in (None, ""):
        return None
    try:
        return unix(value)
    except (AttributeError, TypeError, ValueError) as exc:
        msg = (
            f"Setting {key}={value!r} is not a date-time: use RFC 3339, e.g. 2024-01-31T00:00:00Z."
        )
        raise ConfigError(msg) from exc


def check_config(config: t.Mapping[str, t.Any]) -> None:
    """Refuse settings that cannot work, with one line that names the setting to fix."""
    resolve_api_url(config)
    for key in ("export_window_days", "export_poll_interval_seconds", "export_timeout_seconds",
                "export_row_limit", "max_concurrent_requests"):  # fmt: skip
        value = config.get(key)
        if value is not None and not (_is_number(value) and float(value) > 0):
            msg = f"Setting {key}={value!r} must be a number greater than zero."
            raise ConfigError(msg)
    for key, unit in (
        ("export_lookback_days", "days"),
        ("export_lookback_interval_hours", "hours"),
    ):
        value = config.get(key)
        if value is not None and not (_is_number(value) and float(value) >= 0):
            msg = f"Setting {key}={value!r} must be a number of {unit}, 0 or more."
            raise ConfigError(msg)
    ahead = config.get("export_jobs_ahead")
    if ahead is not None and not (_is_number(ahead) and float(ahead) in (0, 1)):
        msg = (
            f"Setting export_jobs_ahead={ahead!r} must be 0 (one job after another) or 1 (overlap)."
        )
        raise ConfigError(msg)
    start, end = config_time(config, "start_date"), config_time(config, "end_date")
    if start is not None and end is not None and start >= end:
        msg = "Setting start_date must be before end_date."
        raise ConfigError(msg)


def intercom_error_detail(response: requests.Response) -> tuple[str, str | None]:
    """Summarise Intercom's `error.list` body as (text, first error code)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = (response.text or "").strip().replace("\n", " ")[:200]
        return (text or response.reason or "no details"), None
    errors = body.get("errors") or []
    parts = []
    code = None
    for err in errors if isinstance(errors, list) else []:
        if isinstance(err, dict):
            code = code or err.get("code")
            parts.append(": ".join(str(p) for p in (err.get("code"), err.get("message")) if p))
    text = "; ".join(parts) or str(body.get("message") or response.reason or "no details")
    if body.get("request_id"):
        text += f" (request_id {body['request_id']})"
    return text, code


def _is_failed_job(response: requests.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and str(body.get("status") or "").lower() == "failed"
        and bool(body.get("job_identifier") or body.get("job_identfier"))
    )


def rate_limit_wait(headers: t.Mapping[str, str], now: float) -> float | None:
    """Seconds until Intercom's rate-limit window resets, from `X-RateLimit-Reset`/`Retry-After`."""
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return min(max(float(reset) - now, 0.0) + 0.1, MAX_RATE_LIMIT_WAIT)
        except ValueError:
            pass
    retry_after = headers.get("Retry-After")
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), MAX_RATE_LIMIT_WAIT)
        except ValueError:
            pass
    return None


class IntercomStream(RESTStream):
    """Base stream for Intercom's REST API."""

    #: Retries for 429/5xx/connection errors before the sync fails.
    max_tries = 10
    #: Seconds to wait at most between two retries of a server error.
    max_backoff_seconds = 60.0
    #: The clock used to read rate-limit reset times; tests replace it.
    clock: t.Callable[[], float] = staticmethod(time.time)

    def saved_bookmark(self) -> int | None:
        """Unix seconds of this stream's bookmark in state (None: no bookmark, or another key's)."""
        state = self.stream_state
        value = state.get("replication_key_value")
        if value and state.get("replication_key") == self.replication_key:
            return unix(value)
        return None

    @property
    def url_base(self) -> str:
        """The API root of the configured region (or `api_url`)."""
        return resolve_api_url(self.config)

    @property
    def authenticator(self) -> BearerTokenAuthenticator:
        """Bearer-token auth with the configured access token."""
        return BearerTokenAuthenticator(token=self.config["access_token"])

    @property
    def http_headers(self) -> dict[str, str]:
        """Pin the API version so responses keep the shape the schemas expect."""
        return {
            "Intercom-Version": str(self.config.get("intercom_version") or "2.14"),
            "Accept": "application/json",
            "User-Agent": f"tap-intercom-export/{self._tap.plugin_version}",
        }

    def validate_response(self, response: requests.Response) -> None:
        """Map Intercom's statuses to retriable or fatal errors with a readable message."""
        status = response.status_code
        if status < HTTPStatus.BAD_REQUEST:
            return
        detail, code = intercom_error_detail(response)
        path = urlsplit(str(response.request.url if response.request else response.url)).path
        method = str(response.request.method) if response.request else "GET"
        where = f"{method} {path}"
        message = f"Intercom answered HTTP {status} to {where}: {detail}"
        if status == HTTPStatus.TOO_MANY_REQUESTS and any(
            m in detail.lower() for m in _ACTIVE_JOB_MARKERS
        ):
            raise ExportJobActiveError(message, status, code)
        if status == HTTPStatus.GATEWAY_TIMEOUT and _is_failed_job(response):
            # Intercom reports a failed export job (usually one that ran over 12 hours) as
            # HTTP 504 whose body is the job model with status `failed`: polling again will not
            # help. Any other 504 is a gateway timeout, retried below like every 5xx.
            raise ExportJobFailedError(message, status, code)
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            wait = rate_limit_wait(response.headers, self.clock())
            raise IntercomRetriableError(message, response, wait_seconds=wait)
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR or status == HTTPStatus.REQUEST_TIMEOUT:
            raise IntercomRetriableError(message, response)
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            need = next((p for prefix, p in _PERMISSIONS if path.startswith(prefix)), None)
            hint = (
                f"the access token must be valid and allowed to {need}"
                if need
                else "check the access token and its permissions"
            )
            msg = f"{message}. Intercom refused the token: {hint}."
            raise IntercomAuthError(msg, status, code)
        if status == HTTPStatus.NOT_FOUND:
            raise IntercomNotFoundError(message, status, code)
        raise IntercomAPIError(message, status, code)

    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """Wait what a 429 asks for (until the rate-limit reset), else back off exponentially."""
        attempt = 0
        exc = yield  # type: ignore[misc]
        while True:
            wait = getattr(exc, "wait_seconds", None)
            if wait is None:
                wait = min(2.0**attempt, self.max_backoff_seconds)
                attempt += 1
            exc = yield wait

    def backoff_jitter(self, value: float) -> float:
        """Never shorten a wait (a 429 reset is a floor); spread retries by up to 10 %."""
        return value * 1.1 if value > 1 else value

    def backoff_max_tries(self) -> int:
        """How many times a request is tried before the error ends the sync."""
        return self.max_tries

    def backoff_handler(self, details: Details) -> None:
        """Say what is being waited on, and for how long."""
        exc = details.get("exception")
        reason = str(exc).split(": ", 1)[-1] if exc else "error"
        if isinstance(exc, IntercomRetriableError) and exc.wait_seconds is not None:
            reason = "rate limit (429), waiting until Intercom's rate-limit window resets"
        self.logger.warning(
            "Retry %d/%d of %s in %.1f s: %s",
            details.get("tries", 0),
            self.max_tries,
            self.name,
            details.get("wait") or 0.0,
            reason,
        )

    def response_error_message(self, response: requests.Response) -> str:
        """Never echo headers (or anything that could hold a credential) into errors."""
        return intercom_error_detail(response)[0]

    def send(self, request: requests.PreparedRequest) -> requests.Response:
        """Send one prepared request through the SDK's authenticator, session and retries."""
        return self.request_decorator(self._request)(request, None)

    def prepare(
        self,
        method: str,
        url: str,
        *,
        json: dict[str, t.Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.PreparedRequest:
        """Build a request to an absolute URL of the API with the stream's headers."""
        return self.build_prepared_request(
            method=method,
            url=url,
            headers={**self.http_headers, **(headers or {})},
            json=json,
        )
