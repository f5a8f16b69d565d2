"""Durable scanning: each page of the library as it was read, so a resumed scan
starts where the last one stopped, and the library never travels in a workflow."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pydantic import TypeAdapter
from pydantic_core import PydanticSerializationError
from sqlalchemy import delete, func, select

from enforcer.ledger._base import StoreBase, account_id_of, key_of, upsert_insert
from enforcer.ledger._columns import utc_now
from enforcer.ledger._engine import reading, writing
from enforcer.ledger._errors import InvalidLedgerValue, LedgerError
from enforcer.ledger._tables import SCAN_PAGES

_ITEMS: Final = TypeAdapter[Sequence[Mapping[str, Any]]](Sequence[Mapping[str, Any]])
_COMPRESSION_LEVEL: Final = 1
"""Liked-song pages shrink about fivefold even at the fastest level."""


def _page_index_of(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidLedgerValue(f"page index {value!r} must be a whole number from 0")
    return value


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
        """Every page of ``section``, in page order. A gap (a page never saved) is an
        error: planning on a library with a hole in it would miss what the hole held."""
        async with reading(self._engine) as connection:
            rows = (
                await connection.execute(
                    select(SCAN_PAGES.c.page_index, SCAN_PAGES.c.payload)
                    .where(SCAN_PAGES.c.scan_id == scan_id, SCAN_PAGES.c.section == section)
                    .order_by(SCAN_PAGES.c.page_index)
                )
            ).all()
        pages: list[list[dict[str, Any]]] = []
        for expected, row in enumerate(rows):
            if row.page_index != expected:
                raise LedgerError(
                    f"scan {scan_id!r} has no page {expected} of {section!r}: "
                    "scan the library again"
                )
            pages.append(json.loads(zlib.decompress(row.payload)))
        return pages

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
