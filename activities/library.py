"""Reading a person's library durably, page by page, and turning it into a plan.

A large library takes thousands of requests and can meet hours of rate limiting, so
every page read is stored in the ledger before the activity heartbeats the cursor of
the next one. An attempt that follows a crash resumes from the last heartbeat, not
from page one; a page read twice replaces itself. Only counts and IDs go back to the
workflow: the library itself never enters a workflow payload. Once the plan is stored
the scan becomes the account's last completed one (the plan keeps, besides, the entries
of each playlist it edits: a rollback needs them).

With a previous completed scan, a scan reads only what can have changed: a playlist
whose ``snapshot_id`` is the one stored is copied inside the ledger; Liked Songs and
saved albums, listed newest first, are read down to the first page the previous scan
holds entry for entry (same ``added_at``), then its later entries follow, less those
read above and those our enforcements removed since. The entries so assembled must be
as many as Spotify's ``total``, or the section is read whole: the plan is the one a
full scan gives (docs/architecture.md, "Incremental scans", says what this cannot see).

``build_plan`` never holds the library, nor the plan, whole: its memory does not grow
with the library. It reads the stored scan back a few pages at a time, twice: once for
the library's fingerprint (which opens the plan ID's hash), once to plan it section by
section in plan order (liked songs, each playlist, albums, artists) with
``SectionPlanner``, hashing the actions and staging them and the not-enforced entries as
pages of the scan. With the ID known, it keeps the edited playlists' entries, then
copies the staged rows into the plan in the transaction that creates it, checking that
it copied as many as the plan counts. A retried attempt stages the same pages again over
the first page on; the stored plan is the same (the ID is a content hash), and a plan
already stored is left as it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio import activity

from activities._base import SpotifyActivities, kept_alive, refusal_error
from enforcer.ledger import Ledger, LedgerError
from enforcer.library import reads_items
from enforcer.models import (
    BuildPlanRequest,
    CompletedScan,
    EntityType,
    LibrarySection,
    NotEnforced,
    Plan,
    PlanRequest,
    PlanResult,
    RunningScan,
    ScannedPlaylist,
    ScanPlaylistItemsRequest,
    ScanProgress,
    ScanSectionRequest,
    ScanStep,
)
from enforcer.planner import (
    LibraryFingerprint,
    PlanDigest,
    PlanInputError,
    PlanSection,
    SectionPlanner,
)
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
    """Heartbeat details of a section scan: the next page to read, and what was read."""

    model_config = ConfigDict(frozen=True)

    page_index: int = 0
    cursor: Cursor | None = None
    items: int = 0
    finished: bool = False
    section: LibrarySection | None = None
    """The section read (None in the details of an attempt made before it was told)."""
    whole: bool = False
    """The section is read to its last page, whatever a previous scan holds."""


_ENTRY_URI: dict[LibrarySection, Callable[[Mapping[str, Any]], str]] = {
    LibrarySection.LIKED_SONGS: lambda entry: str(entry["track"]["uri"]),
    LibrarySection.SAVED_ALBUMS: lambda entry: str(entry["album"]["uri"]),
}
"""The sections Spotify lists newest first, and what names a stored entry in them."""
_REMOVED_AS: dict[LibrarySection, EntityType] = {
    LibrarySection.LIKED_SONGS: EntityType.LIKED_SONG,
    LibrarySection.SAVED_ALBUMS: EntityType.SAVED_ALBUM,
}


def _all_known(section: LibrarySection, page: Page[Any], known: Mapping[str, str]) -> bool:
    """Whether the previous scan holds every entry of the page, saved at the same moment."""
    uri_of = _ENTRY_URI.get(section)
    if uri_of is None or not page.items:
        return False
    entries = (item.model_dump(mode="json") for item in page.items)
    return all(known.get(uri_of(entry)) == entry["added_at"] for entry in entries)


class _PlaylistsCursor(BaseModel):
    """Heartbeat details of a playlist-items scan: the next page of the next playlist,
    and what was read."""

    model_config = ConfigDict(frozen=True)

    playlist_index: int
    page_index: int = 0
    offset: int = 0
    pages: int = 0
    items: int = 0
    first: int | None = None
    """The first playlist of the activity's range (None, as ``section`` above)."""


SCAN_SECTION: Final = "scan_library_section"
SCAN_PLAYLIST_ITEMS: Final = "scan_playlist_items"


def running_scan(activity_type: str, details: Sequence[Any]) -> RunningScan | None:
    """What a running scan activity has stored so far, from its last heartbeat's
    ``details`` (decoded, as Temporal's description of the workflow holds them); None
    for another activity, or a scan that has not told yet.

    The cheapest exact source of a running scan's pages: Temporal already holds them (a
    scan heartbeats its cursor right after storing a page, sent at least every second),
    and a command that waits describes the workflow anyway; the heartbeat never counts a
    page not yet stored, and a retried attempt starts from it."""
    if not details:
        return None
    try:
        if activity_type == SCAN_SECTION:
            section = _SectionCursor.model_validate(details[0])
            if section.section is None:
                return None
            return RunningScan(
                step=ScanStep(section.section.value),
                pages=section.page_index,
                items=section.items,
            )
        if activity_type == SCAN_PLAYLIST_ITEMS:
            playlists = _PlaylistsCursor.model_validate(details[0])
            if playlists.first is None:
                return None
            return RunningScan(
                step=ScanStep.PLAYLIST_ENTRIES,
                pages=playlists.pages,
                items=playlists.items,
                first=playlists.first,
                playlists_done=playlists.playlist_index - playlists.first,
            )
    except ValidationError:
        return None  # the keep-alive's own detail alone: nothing stored yet
    return None


def playlist_section(playlist_id: str) -> str:
    return f"playlist:{playlist_id}"


# Where ``build_plan`` stages the plan it writes, beside the scan's own sections (no
# playlist section starts with "plan:"), so that ``discard_scan`` takes them too.
_STAGED_ACTIONS = "plan:actions"
_STAGED_NOT_ENFORCED = "plan:not_enforced"
_STAGED_ROWS_PER_PAGE = 500
_FINGERPRINTED: tuple[tuple[str, type[BaseModel]], ...] = (
    (LibrarySection.LIKED_SONGS, SavedTrack),
    (LibrarySection.SAVED_ALBUMS, SavedAlbum),
    (LibrarySection.FOLLOWED_ARTISTS, Artist),
)


class _Staged:
    """Rows of the plan being made, written to the scan a page at a time."""

    def __init__(self, ledger: Ledger, scan_id: str, account_id: str, section: str) -> None:
        self._ledger, self._scan_id, self._account_id = ledger, scan_id, account_id
        self._section = section
        self._rows: list[dict[str, Any]] = []
        self._pages = 0

    async def add(self, entries: Sequence[BaseModel]) -> None:
        self._rows.extend(entry.model_dump(mode="json") for entry in entries)
        while len(self._rows) >= _STAGED_ROWS_PER_PAGE:
            await self._write(self._rows[:_STAGED_ROWS_PER_PAGE])
            del self._rows[:_STAGED_ROWS_PER_PAGE]

    async def flush(self) -> None:
        if self._rows:
            await self._write(self._rows)
            self._rows = []

    async def _write(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._ledger.save_scan_page(
            self._scan_id, self._account_id, self._section, self._pages, rows
        )
        self._pages += 1


class LibraryActivities(SpotifyActivities):
    """The planning scan's activities, sharing one ledger and the app's settings."""

    @activity.defn(name="previous_library_scan")
    async def previous_scan(self, request: PlanRequest) -> str | None:
        """The account's last completed scan, if a planning may take from it what has
        not changed: not for a full scan, nor once it is older than the settings allow."""
        if request.full:
            return None
        last = await self._ledger.last_completed_scan(request.account_id)
        if last is None:
            return None
        scan_id, completed_at = last
        if datetime.now(UTC) - completed_at > timedelta(seconds=self._settings.scan_max_age):
            return None
        return scan_id

    @activity.defn(name=SCAN_SECTION)
    async def scan_section(self, request: ScanSectionRequest) -> ScanProgress:
        """Reads one listing to its last page, storing every page in the ledger; with a
        previous scan, Liked Songs and saved albums only down to the first page it
        already holds as it is (see the module's docstring)."""
        read = _READERS[request.section]
        position = (_resumed(_SectionCursor) or _SectionCursor()).model_copy(
            update={"section": request.section}
        )
        known: dict[str, str] | None = None
        if (
            request.previous_scan_id is not None
            and request.section in _ENTRY_URI
            and not position.whole
        ):
            known = await self._known_dates(request.previous_scan_id, request.section)
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
                    section=request.section,
                    whole=position.whole,
                )
                keep_alive.beat(position)
                if known is None or position.finished:
                    continue
                if not _all_known(request.section, page, known):
                    continue
                items = await self._rest_from_previous(request, position.page_index, page)
                if items == page.total:
                    return ScanProgress(pages=position.page_index, items=items)
                # The stored scan and what Spotify lists no longer add up: something
                # was removed or added below the pages read. Read the section whole.
                await self._ledger.delete_scan_pages(request.scan_id, request.section)
                known, position = None, _SectionCursor(whole=True, section=request.section)
                keep_alive.beat(position)
        return ScanProgress(pages=position.page_index, items=position.items)

    async def _known_dates(self, previous_scan_id: str, section: LibrarySection) -> dict[str, str]:
        """URI -> ``added_at`` of each entry of the previous scan's section."""
        uri_of = _ENTRY_URI[section]
        return {
            uri_of(entry): entry["added_at"]
            async for page in self._ledger.iter_scan_pages(previous_scan_id, section)
            for entry in page
        }

    async def _rest_from_previous(
        self, request: ScanSectionRequest, next_index: int, last_read: Page[Any]
    ) -> int:
        """Stores, after the pages read, the previous scan's entries that followed the
        last entry read, but any read above it (moved there by a new save) and any an
        enforcement removed since that scan; the items the section then holds."""
        assert request.previous_scan_id is not None
        scan_id, section = request.scan_id, request.section
        uri_of = _ENTRY_URI[section]
        removed: set[str] = set()
        completed_at = await self._ledger.scan_completed_at(request.previous_scan_id)
        if completed_at is not None:
            removed = await self._ledger.removed_since(
                request.account_id, _REMOVED_AS[section], completed_at
            )
        # Pages an earlier attempt stored after these are replaced, not appended to.
        await self._ledger.delete_scan_pages(scan_id, section, next_index)
        items = 0
        skipped = set(removed)
        async for page in self._ledger.iter_scan_pages(scan_id, section):
            skipped.update(uri_of(entry) for entry in page)
            items += len(page)
        anchor = uri_of(last_read.items[-1].model_dump(mode="json"))
        found, index = False, next_index
        async for page in self._ledger.iter_scan_pages(request.previous_scan_id, section):
            rest = []
            for entry in page:
                if found and uri_of(entry) not in skipped:
                    rest.append(entry)
                found = found or uri_of(entry) == anchor
            if rest:
                await self._ledger.save_scan_page(scan_id, request.account_id, section, index, rest)
                index, items = index + 1, items + len(rest)
        return items

    @activity.defn(name=SCAN_PLAYLIST_ITEMS)
    async def scan_playlist_items(self, request: ScanPlaylistItemsRequest) -> ScanProgress:
        """Reads every entry of the playlists ``first`` to ``stop`` that a plan reads;
        one the previous scan stored at the same ``snapshot_id`` is copied from it."""
        playlists = await self._scanned(request.scan_id, LibrarySection.PLAYLISTS, Playlist)
        unchanged: dict[str, str] = {}
        if request.previous_scan_id is not None:
            previous = await self._scanned(
                request.previous_scan_id, LibrarySection.PLAYLISTS, Playlist
            )
            unchanged = {playlist.id: playlist.snapshot_id for playlist in previous}
        position = (
            _resumed(_PlaylistsCursor) or _PlaylistsCursor(playlist_index=request.first)
        ).model_copy(update={"first": request.first})
        async with (
            kept_alive() as keep_alive,
            self._client(request.account_id, request.scan_id) as client,
        ):
            while position.playlist_index < min(request.stop, len(playlists)):
                playlist = playlists[position.playlist_index]
                page = None
                if reads_items(playlist, request.account_id, request.options):
                    if (
                        position.page_index == 0
                        and request.previous_scan_id is not None
                        and unchanged.get(playlist.id) == playlist.snapshot_id
                        and await self._ledger.copy_scan_section(
                            request.previous_scan_id,
                            request.scan_id,
                            playlist_section(playlist.id),
                        )
                    ):
                        position = _PlaylistsCursor(
                            playlist_index=position.playlist_index + 1,
                            pages=position.pages,
                            items=position.items,
                        )
                        keep_alive.beat(position)
                        continue
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
                        first=request.first,
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
        """Matches the scanned library against the blocklist and stores the plan, a
        section at a time (see the module's docstring)."""
        blocklist = [entry.artist for entry in await self._ledger.blocklist(request.account_id)]
        protect = await self._ledger.protect_list(request.account_id)
        try:
            planner = SectionPlanner(request.account_id, blocklist, protect, request.options)
        except PlanInputError as error:
            raise refusal_error(str(error)) from error
        async with kept_alive():
            playlists = await self._scanned(request.scan_id, LibrarySection.PLAYLISTS, Playlist)
            fingerprint = await self._fingerprint(request, playlists)
            digest = PlanDigest(
                request.account_id, planner.blocklist, protect, request.options, fingerprint
            )
            edited = await self._stage_plan(request, planner, playlists, digest)
            async for page in self._ledger.iter_scan_pages(
                request.scan_id, _STAGED_NOT_ENFORCED, per_read=1
            ):
                digest.add_not_enforced(NotEnforced.model_validate(row) for row in page)
            plan_id = digest.plan_id()
            # Before the plan: a stored plan always has its playlists (a rollback tells
            # the items enforcement kept from them without reading the playlist again).
            for playlist in playlists:
                if playlist.id in edited:
                    items = await self._playlist_items(request.scan_id, playlist)
                    await self._ledger.save_planned_playlist(
                        plan_id,
                        request.account_id,
                        playlist.id,
                        [item.uri for item in items or ()],
                    )
            counts = planner.counts()
            await self._ledger.save_staged_plan(
                Plan(
                    id=plan_id,
                    account_id=request.account_id,
                    options=request.options,
                    blocklist=planner.blocklist,
                    actions=(),
                    not_enforced=(),
                    counts=counts,
                ),
                scan_id=request.scan_id,
                actions_section=_STAGED_ACTIONS,
                not_enforced_section=_STAGED_NOT_ENFORCED,
            )
        return PlanResult(plan_id=plan_id, counts=counts)

    async def _fingerprint(self, request: BuildPlanRequest, playlists: Sequence[Playlist]) -> str:
        """The library's fingerprint, read back from the scan a few pages at a time."""
        fingerprint = LibraryFingerprint(request.account_id)
        for section, model in _FINGERPRINTED:
            fingerprint.section(
                section, await self._ledger.scan_item_count(request.scan_id, section)
            )
            async for entries in self._slices(request.scan_id, section, model):
                for entry in entries:
                    fingerprint.entry(entry)
        fingerprint.section(LibrarySection.PLAYLISTS, len(playlists))
        for playlist in playlists:
            section = playlist_section(playlist.id)
            read = await self._ledger.scan_page_count(request.scan_id, section) > 0
            fingerprint.begin_playlist(playlist, read=read)
            if read:
                async for items in self._slices(request.scan_id, section, PlaylistItem):
                    fingerprint.playlist_items(items)
            fingerprint.end_playlist()
        return fingerprint.hexdigest()

    async def _stage_plan(
        self,
        request: BuildPlanRequest,
        planner: SectionPlanner,
        playlists: Sequence[Playlist],
        digest: PlanDigest,
    ) -> set[str]:
        """Plans the scan section by section in plan order, hashing the actions and
        staging them and the not-enforced entries in the scan; the playlists edited."""
        scan_id, account_id = request.scan_id, request.account_id
        # A retried attempt stages everything again, from its first page, over what an
        # earlier one staged: the same pages (planning is pure), so nothing is deleted
        # that an attempt still running could be about to copy.
        actions = _Staged(self._ledger, scan_id, account_id, _STAGED_ACTIONS)
        not_enforced = _Staged(self._ledger, scan_id, account_id, _STAGED_NOT_ENFORCED)
        edited: set[str] = set()

        async def take(section: PlanSection) -> None:
            digest.add_actions(section.actions)
            edited.update(a.container_id for a in section.actions if a.container_id)
            await actions.add(section.actions)
            await not_enforced.add(section.not_enforced)

        async for songs in self._slices(scan_id, LibrarySection.LIKED_SONGS, SavedTrack):
            await take(planner.liked_songs(songs))
        for playlist in playlists:
            items = await self._playlist_items(scan_id, playlist)
            await take(
                planner.playlist(
                    ScannedPlaylist(
                        playlist=playlist, items=None if items is None else tuple(items)
                    )
                )
            )
        async for albums in self._slices(scan_id, LibrarySection.SAVED_ALBUMS, SavedAlbum):
            await take(planner.saved_albums(albums))
        async for artists in self._slices(scan_id, LibrarySection.FOLLOWED_ARTISTS, Artist):
            await take(planner.followed_artists(artists))
        await actions.flush()
        await not_enforced.flush()
        return edited

    async def _playlist_items(self, scan_id: str, playlist: Playlist) -> list[PlaylistItem] | None:
        """One playlist's scanned entries; None when it was not read."""
        section = playlist_section(playlist.id)
        if await self._ledger.scan_page_count(scan_id, section) == 0:
            return None
        return [
            item async for items in self._slices(scan_id, section, PlaylistItem) for item in items
        ]

    async def _slices(self, scan_id: str, section: str, model: type[M]) -> AsyncIterator[list[M]]:
        """The section's stored pages, a page at a time, as models."""
        async for page in self._ledger.iter_scan_pages(scan_id, section):
            yield [model.model_validate(item) for item in page]

    @activity.defn(name="discard_scan")
    async def discard_scan(self, scan_id: str) -> None:
        """The plan is stored: the scanned pages are no longer needed (what planning
        did before scans were kept; runs begun then still call it)."""
        await self._ledger.delete_scan(scan_id)

    @activity.defn(name="complete_library_scan")
    async def complete_scan(self, scan: CompletedScan) -> None:
        """The plan is stored: the scan becomes the account's last completed one, which
        the next planning reads from for what has not changed."""
        await self._ledger.complete_scan(scan.scan_id, scan.account_id)

    async def _store(
        self, scan_id: str, account_id: str, section: str, page_index: int, page: Page[Any]
    ) -> None:
        items = [item.model_dump(mode="json") for item in page.items]
        await self._ledger.save_scan_page(scan_id, account_id, section, page_index, items)

    async def _scanned(self, scan_id: str, section: str, model: type[M]) -> list[M]:
        pages = await self._ledger.scan_pages(scan_id, section)
        return [model.model_validate(item) for page in pages for item in page]

    def activities(self) -> Sequence[Callable[..., Any]]:
        return [
            self.check_inputs,
            self.previous_scan,
            self.scan_section,
            self.scan_playlist_items,
            self.build_plan,
            self.discard_scan,
            self.complete_scan,
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
            playlist_index=position.playlist_index + 1,
            pages=pages,
            items=items,
            first=position.first,
        )
    return _PlaylistsCursor(
        playlist_index=position.playlist_index,
        page_index=position.page_index + 1,
        offset=int(page.next_cursor),
        pages=pages,
        items=items,
        first=position.first,
    )


def _resumed(model: type[M]) -> M | None:
    """The cursor the previous attempt heartbeat last, if any."""
    details = activity.info().heartbeat_details
    return model.model_validate(details[0]) if details else None
