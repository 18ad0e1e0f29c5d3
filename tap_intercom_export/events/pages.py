"""Intercom's paged lists: `pages.next` as a link (events) or a cursor (contacts), one loop for both.

The SDK's paginators (singer_sdk.pagination) hold the next page; each page is asked for once
(Intercom has been seen sending a link or cursor it had already sent, which would loop forever),
and links are followed on the configured API URL, never on the host they name.
https://developers.intercom.com/docs/build-an-integration/learn-more/rest-apis/pagination-cursor
"""

from __future__ import annotations

import typing as t
from urllib.parse import parse_qsl, urlencode, urlsplit

from singer_sdk.pagination import BaseAPIPaginator, BaseHATEOASPaginator
from typing_extensions import override

if t.TYPE_CHECKING:
    import requests


class Fetch(t.Protocol):
    """GET a path of the API (with its query): the response and the JSON object it holds."""

    def __call__(self, path_and_query: str) -> tuple[requests.Response, dict[str, t.Any]]:
        """One page."""


def page_id(path_and_query: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A page link's identity, whatever the order of its query parameters."""
    parts = urlsplit(path_and_query)
    return parts.path, tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))


def api_path(link: str, base: str) -> str:
    """Path and query of a `pages.next` link, to be sent to our configured API URL `base`."""
    # Intercom's links name api.intercom.io: following them verbatim would bypass an api_url
    # proxy and could send the token to a host we were not configured for.
    if link.startswith(base + "/"):
        return link[len(base) :]
    parts = urlsplit(link)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _next(response: requests.Response) -> t.Any:
    body = response.json()
    return (body.get("pages") or {}).get("next") if isinstance(body, dict) else None


class NextLinkPaginator(BaseHATEOASPaginator):
    """`pages.next` as a link (a contact's events, its event summary), each page once."""

    def __init__(self, first: str, base: str, what: str) -> None:
        """Start at `first` (path and query) on the API at `base`; `what` names the pages."""
        super().__init__()
        self.first, self.base, self.what = first, base, what
        self.seen = {page_id(first)}
        #: Why paging stopped before the last page, for the operator.
        self.note: str | None = None

    @override
    def get_next_url(self, response: requests.Response) -> str | None:
        """The next page's path and query; None at the end (or at a link already followed)."""
        link = _next(response)
        if not link:
            return None
        if not isinstance(link, str):
            self.note = f"{self.what} pages.next is not a link ({link!r}): later pages not read."
            return None
        path = api_path(link, self.base)
        if page_id(path) in self.seen:
            article = "an" if self.what[:1] in "aeiou" else "a"
            self.note = (
                f"Intercom sent {article} {self.what} page link it had already sent; "
                "stopped paging this contact."
            )
            return None
        self.seen.add(page_id(path))
        return path

    def request_path(self) -> str:
        """Path and query of the page to ask for now."""
        value = self.current_value
        return self.first if value is None else value.geturl()


class CursorPaginator(BaseAPIPaginator[str | None]):
    """`pages.next.starting_after` cursors (contacts), each cursor once."""

    def __init__(self, path: str, query: dict[str, t.Any]) -> None:
        """List `path` with `query`, then with each cursor Intercom hands out."""
        super().__init__(None)
        self.path, self.query = path, query
        self.seen: set[str] = set()
        #: Intercom handed out a cursor it had already sent (paging stopped there).
        self.repeated = False

    @override
    def get_next(self, response: requests.Response) -> str | None:
        """The next cursor; None at the end (or at a cursor already used)."""
        link = _next(response)
        cursor = link.get("starting_after") if isinstance(link, dict) else None
        if not cursor:
            return None
        if cursor in self.seen:
            self.repeated = True
            return None
        self.seen.add(cursor)
        return str(cursor)

    def request_path(self) -> str:
        """Path and query of the page to ask for now."""
        query = dict(self.query)
        if self.current_value:
            query["starting_after"] = self.current_value
        return f"{self.path}?{urlencode(query)}"


def pages(
    fetch: Fetch, paginator: NextLinkPaginator | CursorPaginator
) -> t.Iterator[dict[str, t.Any]]:
    """Every page the paginator leads to, in order; the consumer may stop early."""
    while not paginator.finished:
        response, body = fetch(paginator.request_path())
        yield body
        paginator.advance(response)
