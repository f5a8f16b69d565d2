"""Which playlists a plan may edit and read, and a simple whole-library read.

``playlist_scope`` is the one place that decides whether a playlist may be edited;
``reads_items`` the one place that decides whether its entries are read. The durable
scan (``activities/library.py``) and ``read_library`` both ask them.

The items of a collaborative playlist someone else owns are read even when the person
did not ask to edit it: the plan can then say what was left there and why
(``COLLABORATIVE``), and the person learns that ``include_collaborative`` would change
it. Playlists that no one but their owner can edit (followed ones) are not read at
all: nothing could be done with them, and reading them costs requests.

``read_library`` reads everything in memory, without checkpoints: it is for tests,
demos and small libraries. A large library is read durably, page by page, by the
planning workflow.
"""

from __future__ import annotations

from enforcer.models import LibrarySnapshot, NotEnforcedWhy, PlanOptions, ScannedPlaylist
from enforcer.spotify import Forbidden, SpotifyClient
from enforcer.spotify.models import Playlist

__all__ = ["playlist_scope", "read_library", "reads_items"]


def playlist_scope(
    playlist: Playlist, account_id: str, options: PlanOptions
) -> NotEnforcedWhy | None:
    """None when the plan may edit ``playlist``; otherwise why it is left alone.

    The person's own playlists are edited; a collaborative playlist someone else owns
    only with ``options.include_collaborative``; any other playlist never.
    """
    if playlist.owner_id == account_id:
        return None
    if playlist.collaborative:
        return None if options.include_collaborative else NotEnforcedWhy.COLLABORATIVE
    return NotEnforcedWhy.NOT_OWNED


def reads_items(playlist: Playlist, account_id: str, options: PlanOptions) -> bool:
    """Whether a scan reads ``playlist``'s entries: every playlist it may edit, and the
    collaborative ones it was not asked to edit, so that the plan can list what stays."""
    return playlist_scope(playlist, account_id, options) in (None, NotEnforcedWhy.COLLABORATIVE)


async def read_library(
    client: SpotifyClient, account_id: str, options: PlanOptions
) -> LibrarySnapshot:
    """Every page of Liked Songs, saved albums, followed artists and playlists, and the
    entries of every playlist ``reads_items`` names, in Spotify's order.

    A collaborative playlist that turns out to be unreadable (Spotify answers 403 when
    the person is not, or no longer, one of its collaborators) is kept unread: nothing
    could be done with it. Any other error propagates.
    """
    liked_songs = await client.all_liked_songs()
    saved_albums = await client.all_saved_albums()
    followed_artists = await client.all_followed_artists()
    playlists: list[ScannedPlaylist] = []
    for playlist in await client.all_playlists():
        items = None
        if reads_items(playlist, account_id, options):
            try:
                items = tuple(await client.all_playlist_items(playlist.id))
            except Forbidden:
                if playlist.owner_id == account_id:
                    raise
        playlists.append(ScannedPlaylist(playlist=playlist, items=items))
    return LibrarySnapshot(
        account_id=account_id,
        liked_songs=tuple(liked_songs),
        saved_albums=tuple(saved_albums),
        followed_artists=tuple(followed_artists),
        playlists=tuple(playlists),
    )
