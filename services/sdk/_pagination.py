"""Auto-paging lists: ``for job in client.jobs.list():`` follows ``next_cursor`` until the end."""
from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from typing import Any

from trainhouse.sdk._base import Call, answer
from trainhouse.sdk._models import Page


def _page(call: Call, data: Any) -> Page:
    page = Page.model_validate(data)
    page.data = [call.page_item(item) for item in page.data]  # type: ignore[misc]
    return page


def _next(call: Call, cursor: str) -> Call:
    nxt = copy.copy(call)
    nxt.params = {**(call.params or {}), "after": cursor}
    return nxt


class SyncPager:
    def __init__(self, transport: Any, call: Call):
        self._transport, self._call = transport, call

    def pages(self) -> Iterator[Page]:
        call: Call | None = self._call
        while call is not None:
            page = _page(call, answer(call, self._transport.send(call)))
            yield page
            call = _next(call, page.next_cursor) if page.has_more and page.next_cursor else None

    def first_page(self) -> Page:
        return next(self.pages())

    def __iter__(self) -> Iterator[Any]:
        for page in self.pages():
            yield from page.data

    def to_list(self) -> list[Any]:
        return list(self)


class AsyncPager:
    def __init__(self, transport: Any, call: Call):
        self._transport, self._call = transport, call

    async def pages(self) -> AsyncIterator[Page]:
        call: Call | None = self._call
        while call is not None:
            page = _page(call, answer(call, await self._transport.send(call)))
            yield page
            call = _next(call, page.next_cursor) if page.has_more and page.next_cursor else None

    async def first_page(self) -> Page:
        async for page in self.pages():
            return page
        raise RuntimeError("no page")  # pages() always yields one

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._items()

    async def _items(self) -> AsyncIterator[Any]:
        async for page in self.pages():
            for item in page.data:
                yield item

    async def to_list(self) -> list[Any]:
        return [item async for item in self]
