"""Plans and actions of every kind, built by hand for the ledger's tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from enforcer.models import (
    BlockedArtist,
    EntityType,
    FollowedArtistBefore,
    LikedSongBefore,
    MatchRule,
    NotEnforced,
    NotEnforcedWhy,
    Occurrence,
    Plan,
    PlanCounts,
    PlannedAction,
    PlanOptions,
    PlaylistItemBefore,
    Policy,
    Reason,
    SavedAlbumBefore,
)

ACCOUNT = "alice"
BLOCKED = BlockedArtist(artist_id="0TnOYISbd1XYRBk9myaseg", name="Blocked Artist")
GUEST = BlockedArtist(artist_id="1vCWHaC5f2uS3yhpwWbIA6", name="Guest Star")
PLAYLIST_ID = "37i9dQZF1DXcBWIGoYBM5M"
# Not UTC on purpose: the ledger must give back the same instant.
ADDED = datetime(2024, 3, 1, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))


def spotify_id(number: int, prefix: str = "t") -> str:
    return f"{prefix}{number:021d}"


def liked_song(number: int) -> PlannedAction:
    track = spotify_id(number)
    return PlannedAction(
        entity_type=EntityType.LIKED_SONG,
        entity_id=track,
        uri=f"spotify:track:{track}",
        name=f"Song {number}",
        artist_names=(BLOCKED.name, GUEST.name),
        reasons=(
            Reason(
                artist_id=BLOCKED.artist_id, artist_name=BLOCKED.name, rule=MatchRule.PRIMARY_ARTIST
            ),
            Reason(
                artist_id=GUEST.artist_id, artist_name=GUEST.name, rule=MatchRule.FEATURED_ARTIST
            ),
        ),
        before=LikedSongBefore(added_at=ADDED + timedelta(minutes=number)),
    )


def playlist_item(number: int, playlist_id: str = PLAYLIST_ID) -> PlannedAction:
    track = spotify_id(number)
    return PlannedAction(
        entity_type=EntityType.PLAYLIST_ITEM,
        entity_id=track,
        container_id=playlist_id,
        uri=f"spotify:track:{track}",
        name=f"Song {number} (with Blocked Artist)",
        reasons=(
            Reason(
                artist_id=BLOCKED.artist_id, artist_name=BLOCKED.name, rule=MatchRule.TITLE_MENTION
            ),
        ),
        before=PlaylistItemBefore(
            playlist_id=playlist_id,
            playlist_name="Road trip",
            snapshot_id="MTAsZmYzYjM5YjUxNzY0YjI=",
            occurrences=(
                Occurrence(position=3, added_at=ADDED, added_by="alice"),
                Occurrence(position=17, added_at=None, added_by=None),
            ),
        ),
    )


def saved_album(number: int) -> PlannedAction:
    album = spotify_id(number, "a")
    return PlannedAction(
        entity_type=EntityType.SAVED_ALBUM,
        entity_id=album,
        uri=f"spotify:album:{album}",
        name=f"Album {number}",
        artist_names=("Someone", GUEST.name),
        reasons=(
            Reason(artist_id=GUEST.artist_id, artist_name=GUEST.name, rule=MatchRule.ALBUM_ARTIST),
        ),
        before=SavedAlbumBefore(added_at=ADDED),
    )


def followed_artist(artist: BlockedArtist = BLOCKED) -> PlannedAction:
    return PlannedAction(
        entity_type=EntityType.FOLLOWED_ARTIST,
        entity_id=artist.artist_id,
        uri=f"spotify:artist:{artist.artist_id}",
        name=artist.name,
        reasons=(
            Reason(
                artist_id=artist.artist_id,
                artist_name=artist.name,
                rule=MatchRule.FOLLOWED_ARTIST,
            ),
        ),
        before=FollowedArtistBefore(),
    )


def mixed_actions() -> tuple[PlannedAction, ...]:
    return (liked_song(1), playlist_item(2), saved_album(3), followed_artist(), liked_song(4))


def not_enforced() -> tuple[NotEnforced, ...]:
    return (
        NotEnforced(
            why=NotEnforcedWhy.LOCAL_FILE,
            entity_type=EntityType.PLAYLIST_ITEM,
            name="my demo.mp3 (feat. Blocked Artist)",
            uri="spotify:local:::my+demo:123",
            container_id=PLAYLIST_ID,
            container_name="Road trip",
            positions=(5, 9),
            reasons=(
                Reason(
                    artist_id=BLOCKED.artist_id,
                    artist_name=BLOCKED.name,
                    rule=MatchRule.TITLE_MENTION,
                ),
            ),
        ),
        NotEnforced(
            why=NotEnforcedWhy.UNAVAILABLE,
            entity_type=EntityType.LIKED_SONG,
            name="A song Spotify no longer sends",
        ),
    )


def make_plan(
    plan_id: str = "plan-" + "0" * 59,
    *,
    account_id: str = ACCOUNT,
    actions: tuple[PlannedAction, ...] | None = None,
    policy: Policy = Policy.MENTIONS,
) -> Plan:
    chosen = mixed_actions() if actions is None else actions
    per_type: dict[EntityType, int] = {}
    for action in chosen:
        per_type[action.entity_type] = per_type.get(action.entity_type, 0) + 1
    return Plan(
        id=plan_id,
        account_id=account_id,
        options=PlanOptions(policy=policy, include_collaborative=True),
        blocklist=(BLOCKED, GUEST),
        actions=chosen,
        not_enforced=not_enforced(),
        counts=PlanCounts(
            scanned={EntityType.LIKED_SONG: 1200, EntityType.PLAYLIST_ITEM: 300},
            actions=per_type,
            not_enforced={NotEnforcedWhy.LOCAL_FILE: 1, NotEnforcedWhy.UNAVAILABLE: 1},
            playlists_read=4,
            playlists_touched=1,
        ),
    )
