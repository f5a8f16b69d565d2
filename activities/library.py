"""Reading a person's library durably, page by page, and turning it into a plan.

A large library takes thousands of requests and can meet hours of rate limiting, so
every page read is stored in the ledger before the activity heartbeats the cursor of
the next one. An attempt that follows a crash resumes from the last heartbeat, not
from page one; a page read twice replaces itself. Only counts and IDs go back to the
workflow: the library itself never enters a workflow payload. The scan is discarded
once the plan is stored, but for the entries of each playlist the plan edits, which
the plan keeps (a rollback needs them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict
from temporalio import activity

from activities._base import SpotifyActivities, kept_alive, refusal_error
from enforcer.ledger import LedgerError
from enforcer.library import reads_items
from enforcer.models import (
    BuildPlanRequest,
    LibrarySection,
    LibrarySnapshot,
    PlanRequest,
    PlanResult,
    ScannedPlaylist,
    ScanPlaylistItemsRequest,
    ScanProgress,
    ScanSectionRequest,
)
from enforcer.planner import PlanInputError, make_plan
from enforcer.spotify import Forbidden, SpotifyClient
from enforcer.spotify.models import (
    Artist,
    Cursor,
    Page,
    Playlist,
    PlaylistItem,
    SavedAlbum,
    SavedTrack,
)

M = TypeVar("M", bound=BaseModel)

_SectionReader = Callable[[SpotifyClient, Cursor | None], Awaitable[Page[Any]]]

_READERS: dict[LibrarySection, _SectionReader] = {
    LibrarySection.LIKED_SONGS: lambda client, cursor: client.liked_songs_page(int(cursor or 0)),
    LibrarySection.SAVED_ALBUMS: lambda client, cursor: client.saved_albums_page(int(cursor or 0)),
    LibrarySection.PLAYLISTS: lambda client, cursor: client.playlists_page(int(cursor or 0)),
    LibrarySection.FOLLOWED_ARTISTS: lambda client, cursor: client.followed_artists_page(
        None if cursor is None else str(cursor)
    ),
}


class _SectionCursor(BaseModel):
    """Heartbeat details of a section scan: the next page to read."""

    model_config = ConfigDict(frozen=True)

    page_index: int = 0
    cursor: Cursor | None = None
    items: int = 0
    finished: bool = False


class _PlaylistsCursor(BaseModel):
    """Heartbeat details of a playlist-items scan: the next page of the next playlist."""

    model_config = ConfigDict(frozen=True)

    playlist_index: int
    page_index: int = 0
    offset: int = 0
    pages: int = 0
    items: int = 0


def playlist_section(playlist_id: str) -> str:
    return f"playlist:{playlist_id}"


class LibraryActivities(SpotifyActivities):
    """The planning scan's activities, sharing one ledger and the app's settings."""

    @activity.defn(name="scan_library_section")
    async def scan_section(self, request: ScanSectionRequest) -> ScanProgress:
        """Reads one listing to its last page, storing every page in the ledger."""
        read = _READERS[request.section]
        position = _resumed(_SectionCursor) or _SectionCursor()
        async with (
            kept_alive() as keep_alive,
            self._client(request.account_id, request.scan_id) as client,
        ):
            while not position.finished:
                page = await self._calls(partial(read, client, position.cursor))
                await self._store(
                    request.scan_id, request.account_id, request.section, position.page_index, page
                )
                position = _SectionCursor(
                    page_index=position.page_index + 1,
                    cursor=page.next_cursor,
                    items=position.items + len(page.items),
                    finished=page.next_cursor is None,
                )
                keep_alive.beat(position)
        return ScanProgress(pages=position.page_index, items=position.items)

    @activity.defn(name="scan_playlist_items")
    async def scan_playlist_items(self, request: ScanPlaylistItemsRequest) -> ScanProgress:
        """Reads every entry of the playlists ``first`` to ``stop`` that a plan reads."""
        playlists = await self._scanned(request.scan_id, LibrarySection.PLAYLISTS, Playlist)
        position = _resumed(_PlaylistsCursor) or _PlaylistsCursor(playlist_index=request.first)
        async with (
            kept_alive() as keep_alive,
            self._client(request.account_id, request.scan_id) as client,
        ):
            while position.playlist_index < min(request.stop, len(playlists)):
                playlist = playlists[position.playlist_index]
                page = None
                if reads_items(playlist, request.account_id, request.options):
                    page = await self._calls(
                        partial(
                            _readable_items_page,
                            client,
                            playlist,
                            request.account_id,
                            position.offset,
                        )
                    )
                if page is None:
                    position = _PlaylistsCursor(
                        playlist_index=position.playlist_index + 1,
                        pages=position.pages,
                        items=position.items,
                    )
                    continue
                await self._store(
                    request.scan_id,
                    request.account_id,
                    playlist_section(playlist.id),
                    position.page_index,
                    page,
                )
                position = _next_playlist_position(position, page)
                keep_alive.beat(position)
        return ScanProgress(pages=position.pages, items=position.items)

    @activity.defn(name="check_planning_inputs")
    async def check_inputs(self, request: PlanRequest) -> None:
        """Refuses, before a single page is read, what could never give a plan."""
        await self._refuse_bad_input(self._ledger.require_account(request.account_id))
        if not await self._ledger.blocklist(request.account_id):
            raise refusal_error(
                f"the blocklist of {request.account_id!r} is empty: nothing to plan"
            )

    @activity.defn(name="build_plan")
    async def build_plan(self, request: BuildPlanRequest) -> PlanResult:
        """Matches the scanned library against the blocklist and stores the plan."""
        blocklist = [entry.artist for entry in await self._ledger.blocklist(request.account_id)]
        library = await self._snapshot(request)
        protect = await self._ledger.protect_list(request.account_id)
        try:
            plan = make_plan(library, blocklist, protect, request.options)
        except PlanInputError as error:
            raise refusal_error(str(error)) from error
        # Before the plan: a stored plan always has its playlists (a rollback tells the
        # items enforcement kept from them without reading the playlist again).
        edited = {action.container_id for action in plan.actions if action.container_id}
        for scanned in library.playlists:
            if scanned.playlist.id in edited and scanned.items is not None:
                await self._ledger.save_planned_playlist(
                    plan.id,
                    request.account_id,
                    scanned.playlist.id,
                    [item.uri for item in scanned.items],
                )
        await self._ledger.save_plan(plan)
        return PlanResult(plan_id=plan.id, counts=plan.counts)

    @activity.defn(name="discard_scan")
    async def discard_scan(self, scan_id: str) -> None:
        """The plan is stored: the scanned pages are no longer needed."""
        await self._ledger.delete_scan(scan_id)

    async def _store(
        self, scan_id: str, account_id: str, section: str, page_index: int, page: Page[Any]
    ) -> None:
        items = [item.model_dump(mode="json") for item in page.items]
        await self._ledger.save_scan_page(scan_id, account_id, section, page_index, items)

    async def _scanned(self, scan_id: str, section: str, model: type[M]) -> list[M]:
        pages = await self._ledger.scan_pages(scan_id, section)
        return [model.model_validate(item) for page in pages for item in page]

    async def _snapshot(self, request: BuildPlanRequest) -> LibrarySnapshot:
        playlists: list[ScannedPlaylist] = []
        for playlist in await self._scanned(request.scan_id, LibrarySection.PLAYLISTS, Playlist):
            section = playlist_section(playlist.id)
            read = await self._ledger.scan_page_count(request.scan_id, section) > 0
            items = await self._scanned(request.scan_id, section, PlaylistItem) if read else None
            playlists.append(
                ScannedPlaylist(playlist=playlist, items=None if items is None else tuple(items))
            )
        return LibrarySnapshot(
            account_id=request.account_id,
            liked_songs=tuple(
                await self._scanned(request.scan_id, LibrarySection.LIKED_SONGS, SavedTrack)
            ),
            saved_albums=tuple(
                await self._scanned(request.scan_id, LibrarySection.SAVED_ALBUMS, SavedAlbum)
            ),
            followed_artists=tuple(
                await self._scanned(request.scan_id, LibrarySection.FOLLOWED_ARTISTS, Artist)
            ),
            playlists=tuple(playlists),
        )

    def activities(self) -> Sequence[Callable[..., Any]]:
        return [
            self.check_inputs,
            self.scan_section,
            self.scan_playlist_items,
            self.build_plan,
            self.discard_scan,
        ]

    @staticmethod
    async def _refuse_bad_input(check: Awaitable[object]) -> None:
        try:
            await check
        except LedgerError as error:
            raise refusal_error(str(error)) from error


async def _readable_items_page(
    client: SpotifyClient, playlist: Playlist, account_id: str, offset: int
) -> Page[PlaylistItem] | None:
    """A page of the playlist's entries; None for someone else's collaborative playlist
    that Spotify no longer lets the person read (``read_library`` does the same)."""
    try:
        return await client.playlist_items_page(playlist.id, offset)
    except Forbidden:
        if playlist.owner_id == account_id:
            raise
        return None


def _next_playlist_position(
    position: _PlaylistsCursor, page: Page[PlaylistItem]
) -> _PlaylistsCursor:
    pages, items = position.pages + 1, position.items + len(page.items)
    if page.next_cursor is None:
        return _PlaylistsCursor(
            playlist_index=position.playlist_index + 1, pages=pages, items=items
        )
    return _PlaylistsCursor(
        playlist_index=position.playlist_index,
        page_index=position.page_index + 1,
        offset=int(page.next_cursor),
        pages=pages,
        items=items,
    )


def _resumed(model: type[M]) -> M | None:
    """The cursor the previous attempt heartbeat last, if any."""
    details = activity.info().heartbeat_details
    return model.model_validate(details[0]) if details else None
