"""Cursor pagination (``after`` = id of the last item seen, ``has_more``), sync and async.

List endpoints return newest first. ``Paginator`` holds the one rule for advancing the cursor; the
sync and async iterators only differ in how they send.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from airflow_provider_ft.api.endpoints import ApiRequest
from airflow_provider_ft.api.errors import ResponseFormatError
from airflow_provider_ft.api.models import Page

MakeRequest = Callable[[str | None], ApiRequest]


class Paginator:
    """State of one walk over a list endpoint."""

    def __init__(self, make_request: MakeRequest, kind: str, max_pages: int = 10_000) -> None:
        self.make_request = make_request
        self.kind = kind
        self.max_pages = max_pages
        self.cursor: str | None = None
        self.pages = 0
        self.done = False

    def next_request(self) -> ApiRequest:
        return self.make_request(self.cursor)

    def accept(self, answer: Any) -> list[dict[str, Any]]:
        """Take one page's answer; returns its items and moves the cursor (or marks the walk done)."""
        page = Page.from_api(answer, self.kind)
        self.pages += 1
        next_cursor = page.last_id
        if not page.has_more or next_cursor is None:
            self.done = True
        elif next_cursor == self.cursor or self.pages >= self.max_pages:
            # A server that repeats a cursor would loop forever.
            raise ResponseFormatError(
                f"the list of {self.kind} did not advance past {next_cursor!r}",
                operation=f"listing {self.kind}",
            )
        self.cursor = next_cursor
        return page.data


def iterate(send: Callable[[ApiRequest], Any], make_request: MakeRequest, kind: str) -> Iterator[dict[str, Any]]:
    walk = Paginator(make_request, kind)
    while not walk.done:
        yield from walk.accept(send(walk.next_request()))


async def aiterate(
    send: Callable[[ApiRequest], Awaitable[Any]], make_request: MakeRequest, kind: str
) -> AsyncIterator[dict[str, Any]]:
    walk = Paginator(make_request, kind)
    while not walk.done:
        for item in walk.accept(await send(walk.next_request())):
            yield item


class NewerThan:
    """Collects items of a newest-first listing until the one already seen, in chronological order."""

    def __init__(self, last_seen_id: str | None) -> None:
        self.last_seen_id = last_seen_id
        self.reached = False
        self._newest_first: list[dict[str, Any]] = []

    def take(self, item: dict[str, Any]) -> bool:
        """Offer the next (older) item; returns False once the last seen one is reached."""
        if self.last_seen_id is not None and item.get("id") == self.last_seen_id:
            self.reached = True
            return False
        self._newest_first.append(item)
        return True

    def chronological(self) -> list[dict[str, Any]]:
        return list(reversed(self._newest_first))
