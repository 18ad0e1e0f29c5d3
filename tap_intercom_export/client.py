"""The base stream every Intercom stream shares: URL, auth, headers, errors and backoff."""

from __future__ import annotations

import functools
import itertools
import time
import typing as t
import weakref
from functools import cached_property
from http import HTTPStatus
from urllib.parse import urlsplit

import backoff
import requests
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.streams import RESTStream
from typing_extensions import override

from tap_intercom_export import logs, sdk
from tap_intercom_export.errors import (
    ExportJobActiveError,
    ExportJobFailedError,
    IntercomAPIError,
    IntercomAuthError,
    IntercomNotFoundError,
    IntercomRetriableError,
    NetworkError,
)
from tap_intercom_export.ratelimit import RateLimitHeaders
from tap_intercom_export.settings import API_HOSTS, Settings
from tap_intercom_export.timeutil import unix

if t.TYPE_CHECKING:
    from backoff.types import Details
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    RequestFunc = t.Callable[[requests.PreparedRequest, Context | None], requests.Response]

#: What a retry can fix: no answer, a dropped connection, a 5xx, a 429.
_NO_ANSWER = (
    ConnectionResetError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
_RETRIABLE = (*_NO_ANSWER, IntercomRetriableError)

#: The taps whose API host has answered at least once: a later outage "stopped answering".
_ANSWERED: weakref.WeakSet[Tap] = weakref.WeakSet()
#: The taps whose run has logged its first line.
_STARTED: weakref.WeakSet[Tap] = weakref.WeakSet()

# What requests' long exception texts mean, in words (first match wins).
_REASONS = (
    ("NameResolution", "its name does not resolve"),
    ("Name or service not known", "its name does not resolve"),
    ("Temporary failure in name resolution", "its name does not resolve"),
    ("Connection refused", "connection refused"),
    ("timed out", "timed out"),
    ("Timeout", "timed out"),
)

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


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return next((words for needle, words in _REASONS if needle in text), "connection dropped")


class _Retries:
    """One request's retries: no answer and 5xx by seconds waited, 429s by count."""

    def __init__(self, seconds: float, max_rate_limited: int) -> None:
        self.seconds = seconds
        self.max_rate_limited = max_rate_limited
        self.waited = 0.0
        self.rate_limited = 0

    @staticmethod
    def is_rate_limit(exc: BaseException) -> bool:
        return isinstance(exc, IntercomRetriableError) and exc.wait_seconds is not None

    def give_up(self, exc: BaseException) -> bool:
        if self.is_rate_limit(exc):
            self.rate_limited += 1
            return self.rate_limited >= self.max_rate_limited
        return self.waited >= self.seconds

    def spent(self, details: Details) -> None:
        if not self.is_rate_limit(details.get("exception") or Exception()):
            self.waited += details.get("wait") or 0.0


class IntercomStream(sdk.RunEdges, RESTStream):
    """Base stream for Intercom's REST API."""

    #: Tries of a request answered 429 (each after the wait Intercom asks for) before failing.
    max_tries = 10
    #: Seconds to wait at most between two retries of a request that got no answer or a 5xx.
    max_backoff_seconds = 30.0
    #: Seconds a request may take to connect, and to send each piece of its answer.
    timeout = 60
    #: Seconds of retrying no answer or a 5xx; None: the `network_retry_seconds` setting.
    network_retry_seconds: float | None = None
    #: The clock used to read rate-limit reset times; tests replace it.
    clock: t.Callable[[], float] = staticmethod(time.time)

    def __init__(self, tap: Tap, *args: t.Any, **kwargs: t.Any) -> None:
        """Keep the tap: streams of one run read each other through it."""
        super().__init__(tap, *args, **kwargs)
        self.tap = tap
        logs.quiet(self.logger)

    @cached_property
    def settings(self) -> Settings:
        """The tap's settings, read and checked (settings.py)."""
        return Settings.from_config(self.config)

    @override
    def on_sync_start(self) -> None:
        """The run's first sync logs what the run exports (logs.start)."""
        if self.tap not in _STARTED:
            _STARTED.add(self.tap)
            selected = [s.name for s in self.tap.streams.values() if s.selected]
            bookmarks = self.tap.state.get("bookmarks") or {}
            bookmarked = {n for n, b in bookmarks.items() if b.get("replication_key_value")}
            self.tap.logger.info(logs.start(selected, bookmarked))

    @override
    def on_run_end(self) -> None:
        """The run's last line: records per stream (logs.summary)."""
        counts = getattr(self.tap.message_writer, "records", {})
        selected = [s.name for s in self.tap.streams.values() if s.selected]
        started = getattr(self.tap, "started", time.monotonic())
        self.tap.logger.info(logs.summary(counts, selected, time.monotonic() - started))

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
        _ANSWERED.add(self.tap)
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
    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        """Retry what a retry can fix, for `network_retry_seconds`; then one line that says why.

        A 429 waits what Intercom asks (until its rate-limit window resets), `max_tries` times
        at most. No answer, a dropped connection or a 5xx backs off 1, 2, 4 ... 30 s while the
        waits add up to less than `network_retry_seconds`: an outage shorter than that is
        survived. Each retry is one INFO line (backoff's own log lines are off).
        """

        @functools.wraps(func)
        def call(request: requests.PreparedRequest, context: Context | None) -> requests.Response:
            budget = self.network_retry_seconds
            if budget is None:
                budget = self.settings.network_retry_seconds
            retries = _Retries(budget, self.max_tries)
            retrying = backoff.on_exception(
                functools.partial(self._waits, retries),
                _RETRIABLE,
                max_tries=1000,  # bounded by give_up: seconds waited, or 429s counted
                giveup=retries.give_up,
                on_backoff=[retries.spent, self.backoff_handler],
                jitter=self.backoff_jitter,
                logger=None,
            )(func)
            try:
                return retrying(request, context)
            except _NO_ANSWER as exc:
                raise NetworkError(self._no_answer(request, exc, retries)) from exc
            except IntercomRetriableError as exc:
                if retries.is_rate_limit(exc):
                    raise
                msg = (
                    f"{exc} (still failing after {logs.duration(retries.waited)} of retries): "
                    "Intercom is having trouble (https://www.intercomstatus.com); run the tap "
                    "again later."
                )
                status = exc.response.status_code if exc.response is not None else None
                raise IntercomAPIError(msg, status) from exc

        return call

    def _waits(self, retries: _Retries) -> t.Generator[float, t.Any, None]:
        exponent = itertools.count()
        exc = yield 0.0  # backoff primes the generator, then sends each exception
        while True:
            seconds = getattr(exc, "wait_seconds", None)
            if seconds is None:
                seconds = min(2.0 ** next(exponent), self.max_backoff_seconds)
                seconds = max(min(seconds, retries.seconds - retries.waited), 0.0)
            exc = yield float(seconds)

    def _no_answer(
        self, request: requests.PreparedRequest, exc: BaseException, retries: _Retries
    ) -> str:
        parts = urlsplit(str(request.url))
        host = parts.hostname or self.url_base
        settings = self.settings
        configured = (
            f"api_url={settings.api_url}"
            if settings.api_url != API_HOSTS.get(settings.region)
            else f"region={settings.region} ({settings.api_url})"
        )
        waited = logs.duration(retries.waited)
        if self.tap in _ANSWERED:
            what = (
                f"{host} stopped answering: {request.method} {parts.path} got no answer "
                f"({_reason(exc)}) for {waited} of retries. An export job in flight stays in "
                "the state and the next run resumes it."
            )
        else:
            what = f"{host} never answered ({_reason(exc)}), for {waited} of retries."
        return (
            f"{what} Check the network and the setting {configured}: region must be where the "
            "workspace is hosted (us, eu, au), api_url only for a proxy. Then run again."
        )

    @override
    def backoff_jitter(self, value: float) -> float:
        """Never shorten a wait (a 429 reset is a floor); spread retries by up to 10 %."""
        return value * 1.1 if value > 1 else value

    @override
    def backoff_max_tries(self) -> int:
        """How many times a request answered 429 is tried before the error ends the sync."""
        return self.max_tries

    @override
    def backoff_handler(self, details: Details) -> None:
        """Say what is being waited on, and for how long (one INFO line: a blip needs no one)."""
        exc = details.get("exception")
        if isinstance(exc, IntercomRetriableError) and exc.wait_seconds is not None:
            reason = "rate limit (429), waiting until Intercom's rate-limit window resets"
        elif isinstance(exc, IntercomRetriableError):
            reason = str(exc).split(": ", 1)[-1]
        else:
            reason = f"no answer from the API ({_reason(exc or Exception())})"
        self.logger.info(
            "Retry %d of %s in %.1f s: %s.",
            details.get("tries", 0),
            self.name,
            details.get("wait") or 0.0,
            reason,
        )

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
