"""The base stream every Intercom stream shares: URL, auth, headers, errors and backoff."""

from __future__ import annotations

import itertools
import time
import typing as t
from functools import cached_property
from http import HTTPStatus
from urllib.parse import urlsplit

from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.streams import RESTStream
from typing_extensions import override

from tap_intercom_export import sdk
from tap_intercom_export.batchformat import check_parquet
from tap_intercom_export.errors import (
    ExportJobActiveError,
    ExportJobFailedError,
    IntercomAPIError,
    IntercomAuthError,
    IntercomNotFoundError,
    IntercomRetriableError,
)
from tap_intercom_export.ratelimit import RateLimitHeaders
from tap_intercom_export.settings import Settings
from tap_intercom_export.timeutil import unix

if t.TYPE_CHECKING:
    import requests
    from backoff.types import Details
    from singer_sdk import Tap

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


class IntercomStream(RESTStream):
    """Base stream for Intercom's REST API."""

    #: Retries for 429/5xx/connection errors before the sync fails.
    max_tries = 10
    #: Seconds to wait at most between two retries of a server error.
    max_backoff_seconds = 60.0
    #: The clock used to read rate-limit reset times; tests replace it.
    clock: t.Callable[[], float] = staticmethod(time.time)

    def __init__(self, tap: Tap, *args: t.Any, **kwargs: t.Any) -> None:
        """Keep the tap: streams of one run read each other through it."""
        super().__init__(tap, *args, **kwargs)
        self.tap = tap

    @cached_property
    def settings(self) -> Settings:
        """The tap's settings, read and checked (settings.py)."""
        return Settings.from_config(self.config)

    def saved_bookmark(self) -> int | None:
        """Unix seconds of this stream's bookmark in state (None: no bookmark, or another key's)."""
        state = self.stream_state
        value = state.get("replication_key_value")
        if value and state.get("replication_key") == self.replication_key:
            return unix(value)
        return None

    @property
    @override
    def url_base(self) -> str:
        """The API root of the configured region (or `api_url`)."""
        return self.settings.api_url

    @property
    @override
    def authenticator(self) -> BearerTokenAuthenticator:
        """Bearer-token auth with the configured access token."""
        return BearerTokenAuthenticator(token=self.settings.access_token)

    @property
    @override
    def http_headers(self) -> dict[str, str]:
        """Pin the API version so responses keep the shape the schemas expect."""
        return {"Intercom-Version": self.settings.intercom_version, "Accept": "application/json"}

    @cached_property
    @override
    def user_agent(self) -> str:
        """`tap-intercom-export/<version>`: Intercom's logs tell this tap's requests apart."""
        return f"{self.tap_name}/{type(self.tap).plugin_version}"

    @override
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
            wait = RateLimitHeaders.read(response.headers).wait(self.clock())
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

    @override
    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """Wait what a 429 asks for (until the rate-limit reset), else back off exponentially."""
        exponent = itertools.count()

        def wait(exc: Exception) -> float:
            seconds = getattr(exc, "wait_seconds", None)
            if seconds is None:
                return min(2.0 ** next(exponent), self.max_backoff_seconds)
            return float(seconds)

        return self.backoff_runtime(value=wait)

    @override
    def backoff_jitter(self, value: float) -> float:
        """Never shorten a wait (a 429 reset is a floor); spread retries by up to 10 %."""
        return value * 1.1 if value > 1 else value

    @override
    def backoff_max_tries(self) -> int:
        """How many times a request is tried before the error ends the sync."""
        return self.max_tries

    @override
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

    @override
    def get_batch_config(self, config: t.Mapping[str, t.Any]) -> sdk.BatchConfig | None:
        """The SDK's batch_config; Parquet refused in one line for a stream Parquet cannot hold."""
        batch = super().get_batch_config(config)
        if batch is not None and batch.encoding.format == "parquet" and self.selected:
            check_parquet(self)
        return batch

    @override
    def response_error_message(self, response: requests.Response) -> str:
        """Never echo headers (or anything that could hold a credential) into errors."""
        return intercom_error_detail(response)[0]

    def send(self, request: requests.PreparedRequest) -> requests.Response:
        """Send one prepared request through the SDK's authenticator, session and retries."""
        return sdk.send(self, request)

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
