"""Errors the tap raises, each with a one-line message that says what to do."""

from __future__ import annotations

import typing as t

from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

if t.TYPE_CHECKING:
    import requests


class IntercomError(Exception):
    """Base class of the tap's own errors: the message is meant for the operator."""


class ConfigError(IntercomError):
    """The tap's configuration cannot work (bad URL, bad dates, ...)."""


class InputFileError(IntercomError):
    """A --config, --state or --catalog file cannot be read, or does not have the right shape."""


class NetworkError(IntercomError):
    """The API host never answered, or stopped answering, for the whole retry budget."""


class IntercomAPIError(FatalAPIError):
    """Intercom answered with an error that retrying will not fix."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        """Keep the HTTP status and Intercom's error code next to the message."""
        super().__init__(message)
        self.status = status
        self.code = code


class IntercomAuthError(IntercomAPIError):
    """401/403: the token is invalid or lacks a permission."""


class IntercomNotFoundError(IntercomAPIError):
    """404: the object (contact, export job, download) does not exist (any more)."""


class ExportJobActiveError(IntercomAPIError):
    """429 on job creation: another export job is already active in the workspace."""


class ExportJobFailedError(IntercomAPIError):
    """The export job failed on Intercom's side (status `failed`, HTTP 504)."""


class IntercomRetriableError(RetriableAPIError):
    """A transient error (429, 5xx) worth retrying after `wait_seconds`."""

    def __init__(
        self,
        message: str,
        response: requests.Response | None = None,
        wait_seconds: float | None = None,
    ) -> None:
        """Remember how long the API asked us to wait before the next try."""
        super().__init__(message, response)
        self.wait_seconds = wait_seconds


class ExportError(IntercomError):
    """An export window could not be exported; the message names the job and what to do."""


class ArchiveError(ExportError):
    """The downloaded export archive cannot be read."""
