"""Durable scanning: each page of the library as it was read, so a resumed scan
starts where the last one stopped, and the library never travels in a workflow.

A plan keeps, beside its actions, the entries of each playlist it edits as they were
scanned (``save_planned_playlist``): the planning scan is discarded once the plan is
stored, and a rollback needs them to tell the items enforcement kept (the neighbours
of what it puts back) without reading the playlist. They live in the same table under
the scan ID ``plan/{plan_id}``, one section per playlist.

Pages are read back a few at a time (``iter_scan_pages``, ``pages_of``): a library
of 100,000 items is never held whole to be planned.

The account's last *completed* scan (``complete_scan``) is kept after its plan is
stored, so that the next planning reads from Spotify only what can have changed and
takes the rest from it (``copy_scan_section``, ``iter_scan_pages``). A scan is completed
by a page of its own (section ``scan:completed``, no items): its ``saved_at`` says when.
Completing a scan forgets the account's earlier completed scans and the plan rows the
scan staged; only one completed scan per account is kept, the newest."""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from pydantic import TypeAdapter
from pydantic_core import PydanticSerializationError
from sqlalchemy import delete, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from enforcer.ledger._base import StoreBase, account_id_of, key_of, upsert_insert
from enforcer.ledger._columns import utc_now
from enforcer.ledger._engine import reading, writing
from enforcer.ledger._errors import InvalidLedgerValue, LedgerError
from enforcer.ledger._tables import SCAN_PAGES

_ITEMS: Final = TypeAdapter[Sequence[Mapping[str, Any]]](Sequence[Mapping[str, Any]])
_COMPRESSION_LEVEL: Final = 1
"""Liked-song pages shrink about fivefold even at the fastest level."""


_PLANNED_URIS_PER_PAGE: Final = 5_000
PAGES_PER_READ: Final = 20
"""Pages fetched per query when pages are read back in slices: 1,000 liked songs (50 a
page), 2,000 playlist entries (100 a page). A caller storing larger pages asks fewer."""


_COMPLETED: Final = "scan:completed"
"""The section whose one empty page marks a scan as completed, and when."""
_STAGED_PREFIX: Final = "plan:"
"""Sections a planning stages its plan in, inside its scan (no longer needed once the
plan is stored)."""


def _planned_scan_id(plan_id: str) -> str:
    return f"plan/{key_of(plan_id, 'plan ID')}"


def _planned_section(playlist_id: str) -> str:
    return f"playlist:{key_of(playlist_id, 'playlist ID')}"


def _page_index_of(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidLedgerValue(f"page index {value!r} must be a whole number from 0")
    return value


async def _pages_from(
    connection: AsyncConnection, scan_id: str, section: str, first: int, count: int
) -> list[list[dict[str, Any]]]:
    """Up to ``count`` pages of ``section`` from page ``first`` on. A gap (a
    page never saved) is an error: planning on a library with a hole in it would miss
    what the hole held."""
    rows = (
        await connection.execute(
            select(SCAN_PAGES.c.page_index, SCAN_PAGES.c.payload)
            .where(
                SCAN_PAGES.c.scan_id == scan_id,
                SCAN_PAGES.c.section == section,
                SCAN_PAGES.c.page_index >= first,
            )
            .order_by(SCAN_PAGES.c.page_index)
            .limit(count)
        )
    ).all()
    pages: list[list[dict[str, Any]]] = []
    for expected, row in enumerate(rows, first):
        if row.page_index != expected:
            raise LedgerError(
                f"scan {scan_id!r} has no page {expected} of {section!r}: scan the library again"
            )
        pages.append(json.loads(zlib.decompress(row.payload)))
    return pages


async def pages_of(
    connection: AsyncConnection, scan_id: str, section: str, *, per_read: int = PAGES_PER_READ
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every page of ``section`` in page order, read on ``connection`` (inside its
    transaction) ``per_read`` at a time."""
    first = 0
    while True:
        pages = await _pages_from(connection, scan_id, section, first, per_read)
        for page in pages:
            yield page
        first += len(pages)
        if len(pages) < per_read:
            return


class ScanStore(StoreBase):
    async def save_scan_page(
        self,
        scan_id: str,
        account_id: str,
        section: str,
        page_index: int,
        items: Sequence[Mapping[str, Any]],
    ) -> None:
        """Store one page (pages count from 0). Saving a page again replaces it."""
        key_of(scan_id, "scan ID")
        key_of(section, "scan section")
        account_id = account_id_of(account_id)
        _page_index_of(page_index)
        try:
            encoded = _ITEMS.dump_json(items)
        except (PydanticSerializationError, ValueError, TypeError) as error:
            raise InvalidLedgerValue(
                f"page {page_index} of {section!r} in scan {scan_id!r} cannot be stored as "
                f"JSON: {error}"
            ) from None
        values = {
            "item_count": len(items),
            "payload": zlib.compress(encoded, _COMPRESSION_LEVEL),
            "saved_at": utc_now(),
            "account_id": account_id,
        }
        async with writing(self._engine) as connection:
            await self._check_account(connection, account_id)
            insert = upsert_insert(connection, SCAN_PAGES).values(
                scan_id=scan_id, section=section, page_index=page_index, **values
            )
            await connection.execute(
                insert.on_conflict_do_update(
                    index_elements=[
                        SCAN_PAGES.c.scan_id,
                        SCAN_PAGES.c.section,
                        SCAN_PAGES.c.page_index,
                    ],
                    set_=values,
                )
            )

    async def scan_pages(self, scan_id: str, section: str) -> list[list[dict[str, Any]]]:
        """Every page of ``section``, in page order (see ``pages_of``)."""
        return [page async for page in self.iter_scan_pages(scan_id, section)]

    async def iter_scan_pages(
        self, scan_id: str, section: str, *, per_read: int = PAGES_PER_READ
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every page of ``section``, in page order, read ``per_read`` at a time:
        only those few are in memory at once. Each read is a transaction of its own, so
        the pages must not change while they are read (a scan's do not, once read)."""
        expected = 0
        while True:
            async with reading(self._engine) as connection:
                slice_ = await _pages_from(connection, scan_id, section, expected, per_read)
            for page in slice_:
                yield page
            expected += len(slice_)
            if len(slice_) < per_read:
                return

    async def scan_item_count(self, scan_id: str, section: str) -> int:
        """How many items the stored pages of ``section`` hold, without reading them."""
        async with reading(self._engine) as connection:
            count = await connection.scalar(
                select(func.sum(SCAN_PAGES.c.item_count)).where(
                    SCAN_PAGES.c.scan_id == scan_id, SCAN_PAGES.c.section == section
                )
            )
        return int(count or 0)

    async def scan_page_count(self, scan_id: str, section: str) -> int:
        async with reading(self._engine) as connection:
            count = await connection.scalar(
                select(func.count()).where(
                    SCAN_PAGES.c.scan_id == scan_id, SCAN_PAGES.c.section == section
                )
            )
        return int(count or 0)

    async def delete_scan(self, scan_id: str) -> None:
        """Forget every page of the scan (nothing happens if there is none)."""
        async with writing(self._engine) as connection:
            await connection.execute(delete(SCAN_PAGES).where(SCAN_PAGES.c.scan_id == scan_id))

    async def delete_scan_pages(self, scan_id: str, section: str, first: int = 0) -> None:
        """Forget the pages of ``section`` from page ``first`` on."""
        async with writing(self._engine) as connection:
            await connection.execute(
                delete(SCAN_PAGES).where(
                    SCAN_PAGES.c.scan_id == scan_id,
                    SCAN_PAGES.c.section == section,
                    SCAN_PAGES.c.page_index >= _page_index_of(first),
                )
            )

    async def copy_scan_section(self, source_scan_id: str, scan_id: str, section: str) -> int:
        """Make ``section`` of ``scan_id`` a copy of the same section of
        ``source_scan_id``, in one transaction, inside the database (the items never
        leave it); the pages copied (0 when the source has none: the section is then
        left empty). Copying again replaces the copy."""
        key_of(scan_id, "scan ID")
        key_of(section, "scan section")
        async with writing(self._engine) as connection:
            await connection.execute(
                delete(SCAN_PAGES).where(
                    SCAN_PAGES.c.scan_id == scan_id, SCAN_PAGES.c.section == section
                )
            )
            copied = select(
                literal(scan_id),
                SCAN_PAGES.c.section,
                SCAN_PAGES.c.page_index,
                SCAN_PAGES.c.account_id,
                SCAN_PAGES.c.item_count,
                SCAN_PAGES.c.payload,
                literal(utc_now(), SCAN_PAGES.c.saved_at.type),
            ).where(SCAN_PAGES.c.scan_id == source_scan_id, SCAN_PAGES.c.section == section)
            result = await connection.execute(
                insert(SCAN_PAGES).from_select(
                    [
                        SCAN_PAGES.c.scan_id,
                        SCAN_PAGES.c.section,
                        SCAN_PAGES.c.page_index,
                        SCAN_PAGES.c.account_id,
                        SCAN_PAGES.c.item_count,
                        SCAN_PAGES.c.payload,
                        SCAN_PAGES.c.saved_at,
                    ],
                    copied,
                )
            )
        return int(result.rowcount or 0)

    async def complete_scan(self, scan_id: str, account_id: str) -> None:
        """Keep the scan as the account's last completed one (see the module's
        docstring). Completing it again only moves its time."""
        await self.save_scan_page(scan_id, account_id, _COMPLETED, 0, [])
        async with writing(self._engine) as connection:
            await connection.execute(
                delete(SCAN_PAGES).where(
                    SCAN_PAGES.c.scan_id == scan_id,
                    SCAN_PAGES.c.section.startswith(_STAGED_PREFIX, autoescape=True),
                )
            )
            earlier = select(SCAN_PAGES.c.scan_id).where(
                SCAN_PAGES.c.account_id == account_id_of(account_id),
                SCAN_PAGES.c.section == _COMPLETED,
                SCAN_PAGES.c.scan_id != scan_id,
            )
            await connection.execute(
                delete(SCAN_PAGES).where(SCAN_PAGES.c.scan_id.in_(earlier.scalar_subquery()))
            )

    async def scan_completed_at(self, scan_id: str) -> datetime | None:
        """When ``complete_scan`` completed the scan; None if it is not completed (or
        was forgotten since)."""
        async with reading(self._engine) as connection:
            return await connection.scalar(
                select(SCAN_PAGES.c.saved_at).where(
                    SCAN_PAGES.c.scan_id == scan_id, SCAN_PAGES.c.section == _COMPLETED
                )
            )

    async def last_completed_scan(self, account_id: str) -> tuple[str, datetime] | None:
        """The account's last completed scan and when it was completed, if any."""
        async with reading(self._engine) as connection:
            row = (
                await connection.execute(
                    select(SCAN_PAGES.c.scan_id, SCAN_PAGES.c.saved_at)
                    .where(
                        SCAN_PAGES.c.account_id == account_id_of(account_id),
                        SCAN_PAGES.c.section == _COMPLETED,
                    )
                    .order_by(SCAN_PAGES.c.saved_at.desc())
                    .limit(1)
                )
            ).first()
        return None if row is None else (row.scan_id, row.saved_at)

    async def save_planned_playlist(
        self, plan_id: str, account_id: str, playlist_id: str, uris: Sequence[str | None]
    ) -> None:
        """Keep a playlist's entries (URIs in order, None for unavailable ones) as the
        plan ``plan_id`` saw them. Saving them again replaces them."""
        scan_id, section = _planned_scan_id(plan_id), _planned_section(playlist_id)
        entries = [{"uri": uri} for uri in uris]
        pages = [
            entries[start : start + _PLANNED_URIS_PER_PAGE]
            for start in range(0, len(entries), _PLANNED_URIS_PER_PAGE)
        ] or [[]]
        for index, page in enumerate(pages):
            await self.save_scan_page(scan_id, account_id, section, index, page)

    async def planned_playlist(
        self, plan_id: str, playlist_id: str
    ) -> tuple[str | None, ...] | None:
        """The entries ``save_planned_playlist`` kept for the plan; None when it kept
        none (a plan made before plans kept them)."""
        pages = await self.scan_pages(_planned_scan_id(plan_id), _planned_section(playlist_id))
        if not pages:
            return None
        return tuple(entry.get("uri") for page in pages for entry in page)
