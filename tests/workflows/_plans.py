"""A world's plan, made and stored without the planning workflow: quick at any size.

Reading 100,000 liked songs through the client takes 2,000 pages and most of a
minute; what the enforcement tests need is the plan the planner makes of them. So the
liked songs are built straight from the generated fixture (as Spotify would list them:
newest first, each track with its artists and album), and the rest of the library, a
few pages, is read through the client as planning reads it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from enforcer.library import reads_items
from enforcer.models import LibrarySnapshot, Plan, PlanOptions, ProtectList, ScannedPlaylist
from enforcer.planner import make_plan
from enforcer.session import spotify_client
from enforcer.spotify.models import AlbumRef, SavedTrack, SimplifiedArtist, Track
from tests.workflows._world import USER, World


async def store_plan(made: World) -> Plan:
    """The plan of the world's blocklist over its library, saved in its ledger."""
    options = PlanOptions()
    snapshot = await _snapshot(made, options)
    plan = make_plan(snapshot, made.blocked, ProtectList(), options)
    await made.ledger.save_plan(plan)
    return plan


async def _snapshot(made: World, options: PlanOptions) -> LibrarySnapshot:
    async with spotify_client(made.settings, made.ledger, USER, transport=made.transport) as client:
        playlists = []
        for playlist in await client.all_playlists():
            items = None
            if reads_items(playlist, USER, options):
                items = tuple(await client.all_playlist_items(playlist.id))
            playlists.append(ScannedPlaylist(playlist=playlist, items=items))
        return LibrarySnapshot(
            account_id=USER,
            liked_songs=_liked_songs(made.library),
            saved_albums=tuple(await client.all_saved_albums()),
            followed_artists=tuple(await client.all_followed_artists()),
            playlists=tuple(playlists),
        )


def _liked_songs(fixture: dict[str, Any]) -> tuple[SavedTrack, ...]:
    catalog = fixture["catalog"]
    artists = {
        row["id"]: SimplifiedArtist(
            id=row["id"], name=row["name"], uri=f"spotify:artist:{row['id']}"
        )
        for row in catalog["artists"]
    }
    albums = {
        row["id"]: AlbumRef(
            id=row["id"],
            name=row["name"],
            uri=f"spotify:album:{row['id']}",
            artists=[artists[artist_id] for artist_id in row["artist_ids"]],
        )
        for row in catalog["albums"]
    }
    tracks = {row["id"]: row for row in catalog["tracks"]}

    def track(track_id: str) -> Track:
        row = tracks[track_id]
        return Track(
            id=track_id,
            name=row["name"],
            uri=f"spotify:track:{track_id}",
            artists=[artists[artist_id] for artist_id in row["artist_ids"]],
            album=albums[row["album_id"]],
        )

    (user,) = (user for user in fixture["users"] if user["id"] == USER)
    # The generator lists them newest first, as Spotify does.
    return tuple(
        SavedTrack(
            added_at=datetime.fromisoformat(saved["added_at"]), track=track(saved["track_id"])
        )
        for saved in user["liked_songs"]
    )
