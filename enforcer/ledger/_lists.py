"""The blocklist and the protect list of each account.

Every change is one transaction, checked in full before anything is written: one
bad entry in a batch of them changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, get_args

from sqlalchemy import delete, insert, select

from enforcer.ledger._base import StoreBase, spotify_id_of, text_of
from enforcer.ledger._columns import utc_now
from enforcer.ledger._engine import reading, writing
from enforcer.ledger._errors import InvalidLedgerValue, NotOnList
from enforcer.ledger._records import BlocklistEntry, ProtectedEntry, ProtectedKind
from enforcer.ledger._tables import BLOCKLIST, PROTECTED
from enforcer.models import BlockedArtist, ProtectList

_SOURCE: Final = re.compile(r"id|uri|url|file:\S.*")
_PROTECTED_KINDS: Final = frozenset(get_args(ProtectedKind))


def _check_source(source: object) -> str:
    if not isinstance(source, str) or not _SOURCE.fullmatch(source):
        raise InvalidLedgerValue(
            f"{source!r} is not a blocklist source: expected 'id', 'uri', 'url' or 'file:NAME'"
        )
    return source


def _check_kind(kind: object) -> ProtectedKind:
    if kind not in _PROTECTED_KINDS:
        raise InvalidLedgerValue(f"{kind!r} cannot be protected: expected 'track' or 'playlist'")
    return "track" if kind == "track" else "playlist"


def _unique_ids(ids: Sequence[str], what: str) -> list[str]:
    if isinstance(ids, str):
        raise InvalidLedgerValue(f"expected a list of {what} IDs, not the text {ids!r}")
    return list(dict.fromkeys(spotify_id_of(value, what) for value in ids))


class ListStore(StoreBase):
    # The blocklist -----------------------------------------------------------------

    async def add_to_blocklist(
        self, account_id: str, artists: Sequence[BlockedArtist], source: str
    ) -> list[BlockedArtist]:
        """Add ``artists``; returns those newly added (a listed artist keeps its entry)."""
        source = _check_source(source)
        wanted: dict[str, BlockedArtist] = {}
        for artist in artists:
            if not isinstance(artist, BlockedArtist):
                raise InvalidLedgerValue(f"{artist!r} is not a BlockedArtist")
            spotify_id_of(artist.artist_id, "artist")
            text_of(artist.name, f"the name of artist {artist.artist_id!r}")
            wanted.setdefault(artist.artist_id, artist)
        if not wanted:
            return []
        now = utc_now()
        async with writing(self._engine) as connection:
            await self._check_account(connection, account_id, lock=True)
            listed = set(
                await connection.scalars(
                    select(BLOCKLIST.c.artist_id).where(BLOCKLIST.c.account_id == account_id)
                )
            )
            added = [artist for artist in wanted.values() if artist.artist_id not in listed]
            if added:
                await connection.execute(
                    insert(BLOCKLIST),
                    [
                        {
                            "account_id": account_id,
                            "artist_id": artist.artist_id,
                            "name": artist.name,
                            "source": source,
                            "added_at": now,
                        }
                        for artist in added
                    ],
                )
        return added

    async def remove_from_blocklist(
        self, account_id: str, artist_ids: Sequence[str]
    ) -> list[BlockedArtist]:
        """Remove every one of ``artist_ids``, or, if any is not listed, none of them."""
        ids = _unique_ids(artist_ids, "artist")
        if not ids:
            return []
        async with writing(self._engine) as connection:
            await self._check_account(connection, account_id, lock=True)
            rows = await connection.execute(
                select(BLOCKLIST.c.artist_id, BLOCKLIST.c.name).where(
                    BLOCKLIST.c.account_id == account_id, BLOCKLIST.c.artist_id.in_(ids)
                )
            )
            names = {row.artist_id: row.name for row in rows}
            missing = [artist_id for artist_id in ids if artist_id not in names]
            if missing:
                raise NotOnList(f"blocklist of {account_id!r}", missing)
            await connection.execute(
                delete(BLOCKLIST).where(
                    BLOCKLIST.c.account_id == account_id, BLOCKLIST.c.artist_id.in_(ids)
                )
            )
        return [BlockedArtist(artist_id=artist_id, name=names[artist_id]) for artist_id in ids]

    async def blocklist(self, account_id: str) -> list[BlocklistEntry]:
        """The account's blocklist, oldest entry first."""
        async with reading(self._engine) as connection:
            await self._check_account(connection, account_id)
            rows = await connection.execute(
                select(
                    BLOCKLIST.c.artist_id,
                    BLOCKLIST.c.name,
                    BLOCKLIST.c.source,
                    BLOCKLIST.c.added_at,
                )
                .where(BLOCKLIST.c.account_id == account_id)
                .order_by(BLOCKLIST.c.added_at, BLOCKLIST.c.id)
            )
            return [BlocklistEntry.model_validate(row._asdict()) for row in rows]

    # The protect list --------------------------------------------------------------

    async def add_protected(
        self, account_id: str, kind: ProtectedKind, items: Sequence[tuple[str, str]]
    ) -> list[ProtectedEntry]:
        """Protect ``(spotify_id, name)`` items; returns those newly protected."""
        kind = _check_kind(kind)
        wanted: dict[str, str] = {}
        for item in items:
            if not isinstance(item, tuple) or len(item) != 2:
                raise InvalidLedgerValue(f"{item!r} is not a ({kind} ID, name) pair")
            spotify_id, name = item
            spotify_id_of(spotify_id, kind)
            wanted.setdefault(spotify_id, text_of(name, f"the name of {kind} {spotify_id!r}"))
        if not wanted:
            return []
        now = utc_now()
        async with writing(self._engine) as connection:
            await self._check_account(connection, account_id, lock=True)
            listed = set(
                await connection.scalars(
                    select(PROTECTED.c.spotify_id).where(
                        PROTECTED.c.account_id == account_id, PROTECTED.c.kind == kind
                    )
                )
            )
            added = [
                ProtectedEntry(kind=kind, spotify_id=spotify_id, name=name, added_at=now)
                for spotify_id, name in wanted.items()
                if spotify_id not in listed
            ]
            if added:
                await connection.execute(
                    insert(PROTECTED),
                    [{"account_id": account_id, **entry.model_dump()} for entry in added],
                )
        return added

    async def remove_protected(
        self, account_id: str, kind: ProtectedKind, ids: Sequence[str]
    ) -> list[ProtectedEntry]:
        """Unprotect every one of ``ids``, or, if any is not protected, none of them."""
        kind = _check_kind(kind)
        unique = _unique_ids(ids, kind)
        if not unique:
            return []
        async with writing(self._engine) as connection:
            await self._check_account(connection, account_id, lock=True)
            where = (
                PROTECTED.c.account_id == account_id,
                PROTECTED.c.kind == kind,
                PROTECTED.c.spotify_id.in_(unique),
            )
            rows = await connection.execute(
                select(
                    PROTECTED.c.kind, PROTECTED.c.spotify_id, PROTECTED.c.name, PROTECTED.c.added_at
                ).where(*where)
            )
            found = {row.spotify_id: ProtectedEntry.model_validate(row._asdict()) for row in rows}
            missing = [spotify_id for spotify_id in unique if spotify_id not in found]
            if missing:
                raise NotOnList(f"protected {kind}s of {account_id!r}", missing)
            await connection.execute(delete(PROTECTED).where(*where))
        return [found[spotify_id] for spotify_id in unique]

    async def protected(self, account_id: str) -> list[ProtectedEntry]:
        """Everything the account protects: playlists first, then tracks, oldest first."""
        async with reading(self._engine) as connection:
            await self._check_account(connection, account_id)
            rows = await connection.execute(
                select(
                    PROTECTED.c.kind, PROTECTED.c.spotify_id, PROTECTED.c.name, PROTECTED.c.added_at
                )
                .where(PROTECTED.c.account_id == account_id)
                .order_by(PROTECTED.c.kind, PROTECTED.c.added_at, PROTECTED.c.id)
            )
            return [ProtectedEntry.model_validate(row._asdict()) for row in rows]

    async def protect_list(self, account_id: str) -> ProtectList:
        entries = await self.protected(account_id)
        return ProtectList(
            track_ids=frozenset(e.spotify_id for e in entries if e.kind == "track"),
            playlist_ids=frozenset(e.spotify_id for e in entries if e.kind == "playlist"),
        )
