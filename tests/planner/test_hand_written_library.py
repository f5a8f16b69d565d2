"""The hand-written library, read through the client and the sandbox, planned under each
policy and compared with answers written out by hand (never computed by the planner)."""

from __future__ import annotations

from typing import Any

import pytest

from enforcer.library import read_library
from enforcer.models import (
    EntityType,
    LikedSongBefore,
    MatchRule,
    NotEnforced,
    NotEnforcedWhy,
    Plan,
    PlannedAction,
    PlanOptions,
    PlaylistItemBefore,
    Policy,
    SavedAlbumBefore,
)
from enforcer.planner import make_plan
from tests.planner._library import (
    ACCOUNT,
    ALICE_MIX,
    BLOCKED_ANTHEM,
    BLOCKED_BAND,
    BLOCKED_HITS,
    BLOCKLIST,
    BOB_FAVOURITES,
    DEMO_TAPE,
    GUEST_VERSE,
    KEEP_FOREVER,
    MIDNIGHT,
    NIGHT_DRIVE,
    NOVA,
    OLD_CHILL,
    PROTECT,
    RAIN,
    ROAD_TRIP,
    SHADOW_MC,
    SHADOW_SOLO,
    SHINE,
    SPLIT_SINGLE,
    TOGETHER,
    at,
    planner_sandbox,
    read,
    track_uri,
)
from tests.spotify.sandbox_client import sandbox_client
from tests.support.contract import ContractRecorder

PRIMARY = MatchRule.PRIMARY_ARTIST
FEATURED = MatchRule.FEATURED_ARTIST
MENTION = MatchRule.TITLE_MENTION
ALBUM = MatchRule.ALBUM_ARTIST
FOLLOWED = MatchRule.FOLLOWED_ARTIST

PLAYLISTS = {
    ALICE_MIX: ("Alice Mix", "snapAliceMix1"),
    ROAD_TRIP: ("Road Trip", "snapRoadTrip1"),
    OLD_CHILL: ("Old Chill", "snapOldChill1"),
}

Reasons = tuple[tuple[str, MatchRule], ...]


# What the answers are written in ---------------------------------------------------


def liked(track_id: str, reasons: Reasons, added_at: str) -> tuple[Any, ...]:
    return (EntityType.LIKED_SONG, None, track_id, reasons, at(added_at))


def item(
    playlist_id: str,
    track_id: str,
    reasons: Reasons,
    *occurrences: tuple[int, str | None, str | None],
) -> tuple[Any, ...]:
    name, snapshot_id = PLAYLISTS[playlist_id]
    places = tuple(
        (position, None if added_at is None else at(added_at), added_by)
        for position, added_at, added_by in occurrences
    )
    return (EntityType.PLAYLIST_ITEM, playlist_id, track_id, reasons, (name, snapshot_id, places))


def album(album_id: str, reasons: Reasons, added_at: str) -> tuple[Any, ...]:
    return (EntityType.SAVED_ALBUM, None, album_id, reasons, at(added_at))


def artist(artist_id: str) -> tuple[Any, ...]:
    return (EntityType.FOLLOWED_ARTIST, None, artist_id, ((artist_id, FOLLOWED),), None)


def held(
    why: NotEnforcedWhy,
    uri: str | None,
    reasons: Reasons,
    playlist_id: str | None = None,
    *positions: int,
) -> tuple[Any, ...]:
    entity_type = EntityType.LIKED_SONG if playlist_id is None else EntityType.PLAYLIST_ITEM
    return (why, entity_type, playlist_id, uri, positions, reasons)


def summary(action: PlannedAction) -> tuple[Any, ...]:
    """An action projected onto what the answers spell out."""
    before = action.before
    detail: Any = None
    if isinstance(before, PlaylistItemBefore):
        places = tuple((o.position, o.added_at, o.added_by) for o in before.occurrences)
        detail = (before.playlist_name, before.snapshot_id, places)
    elif isinstance(before, LikedSongBefore | SavedAlbumBefore):
        detail = before.added_at
    reasons = tuple((reason.artist_id, reason.rule) for reason in action.reasons)
    return (action.entity_type, action.container_id, action.entity_id, reasons, detail)


def held_summary(entry: NotEnforced) -> tuple[Any, ...]:
    reasons = tuple((reason.artist_id, reason.rule) for reason in entry.reasons)
    return (entry.why, entry.entity_type, entry.container_id, entry.uri, entry.positions, reasons)


def assert_plan(plan: Plan, actions: list[tuple[Any, ...]], held: list[tuple[Any, ...]]) -> None:
    assert [summary(action) for action in plan.actions] == actions
    assert [held_summary(entry) for entry in plan.not_enforced] == held


# The answers ----------------------------------------------------------------------

ALBUMS_AND_ARTISTS_BY_ANY_CREDIT = [
    album(BLOCKED_HITS, ((BLOCKED_BAND, ALBUM),), "2023-03-01T09:00:00Z"),
    # Split Single is Good Singer's and Blocked Band's; Duo Debut, where Shadow MC is a
    # guest on one track only, stays saved.
    album(SPLIT_SINGLE, ((BLOCKED_BAND, ALBUM),), "2023-01-15T09:00:00Z"),
    artist(BLOCKED_BAND),
    artist(SHADOW_MC),
]

HELD_IN_OWN_PLAYLISTS_AND_LIKED = [
    held(NotEnforcedWhy.PROTECTED_TRACK, track_uri(SHADOW_SOLO), ((SHADOW_MC, PRIMARY),)),
    held(NotEnforcedWhy.LOCAL_FILE, DEMO_TAPE, ((BLOCKED_BAND, PRIMARY),), ALICE_MIX, 3),
    held(NotEnforcedWhy.UNAVAILABLE, None, (), ALICE_MIX, 4),
    held(
        NotEnforcedWhy.PROTECTED_TRACK,
        track_uri(SHADOW_SOLO),
        ((SHADOW_MC, PRIMARY),),
        ALICE_MIX,
        7,
    ),
    held(
        NotEnforcedWhy.PROTECTED_PLAYLIST,
        track_uri(BLOCKED_ANTHEM),
        ((BLOCKED_BAND, PRIMARY),),
        KEEP_FOREVER,
        0,
    ),
]

FEATURED_ACTIONS = [
    liked(TOGETHER, ((BLOCKED_BAND, FEATURED),), "2024-06-06T12:00:00Z"),
    liked(BLOCKED_ANTHEM, ((BLOCKED_BAND, PRIMARY),), "2024-06-02T12:00:00Z"),
    liked(GUEST_VERSE, ((SHADOW_MC, FEATURED),), "2024-06-01T12:00:00Z"),
    liked(RAIN, ((SHADOW_MC, FEATURED),), "2024-05-31T12:00:00Z"),
    # The duplicated track is one action holding both of its places.
    item(
        ALICE_MIX,
        BLOCKED_ANTHEM,
        ((BLOCKED_BAND, PRIMARY),),
        (0, "2024-01-01T10:00:00Z", "alice"),
        (2, "2024-01-03T10:00:00Z", "alice"),
    ),
    item(ALICE_MIX, TOGETHER, ((BLOCKED_BAND, FEATURED),), (5, "2024-01-06T10:00:00Z", "alice")),
    item(OLD_CHILL, RAIN, ((SHADOW_MC, FEATURED),), (0, None, None)),
    *ALBUMS_AND_ARTISTS_BY_ANY_CREDIT,
]

LEFT_IN_ROAD_TRIP = [
    held(
        NotEnforcedWhy.COLLABORATIVE,
        track_uri(GUEST_VERSE),
        ((SHADOW_MC, FEATURED),),
        ROAD_TRIP,
        0,
    ),
    held(
        NotEnforcedWhy.COLLABORATIVE,
        track_uri(BLOCKED_ANTHEM),
        ((BLOCKED_BAND, PRIMARY),),
        ROAD_TRIP,
        2,
    ),
]


async def test_featured_policy_removes_every_credit_of_a_blocked_artist(
    contract_recorder: ContractRecorder,
) -> None:
    library = await read(planner_sandbox(), contract_recorder)

    plan = make_plan(library, BLOCKLIST, PROTECT, PlanOptions(policy=Policy.FEATURED))

    assert_plan(plan, FEATURED_ACTIONS, HELD_IN_OWN_PLAYLISTS_AND_LIKED + LEFT_IN_ROAD_TRIP)
    assert plan.counts.scanned == {
        EntityType.LIKED_SONG: 7,
        EntityType.PLAYLIST_ITEM: 10 + 2 + 3 + 3,  # Bob's Favourites is not read
        EntityType.SAVED_ALBUM: 4,
        EntityType.FOLLOWED_ARTIST: 3,
    }
    assert plan.counts.actions == {
        EntityType.LIKED_SONG: 4,
        EntityType.PLAYLIST_ITEM: 3,
        EntityType.SAVED_ALBUM: 2,
        EntityType.FOLLOWED_ARTIST: 2,
    }
    assert plan.counts.not_enforced == {
        NotEnforcedWhy.LOCAL_FILE: 1,
        NotEnforcedWhy.UNAVAILABLE: 1,
        NotEnforcedWhy.PROTECTED_TRACK: 2,
        NotEnforcedWhy.PROTECTED_PLAYLIST: 1,
        NotEnforcedWhy.COLLABORATIVE: 2,
        NotEnforcedWhy.NOT_OWNED: 0,
    }
    assert (plan.counts.playlists_read, plan.counts.playlists_touched) == (4, 2)
    assert plan.account_id == ACCOUNT
    assert [artist.artist_id for artist in plan.blocklist] == [BLOCKED_BAND, NOVA, SHADOW_MC]


async def test_primary_policy_leaves_tracks_and_albums_a_blocked_artist_only_features_on(
    contract_recorder: ContractRecorder,
) -> None:
    library = await read(planner_sandbox(), contract_recorder)

    plan = make_plan(library, BLOCKLIST, PROTECT, PlanOptions(policy=Policy.PRIMARY))

    assert_plan(
        plan,
        [
            liked(BLOCKED_ANTHEM, ((BLOCKED_BAND, PRIMARY),), "2024-06-02T12:00:00Z"),
            item(
                ALICE_MIX,
                BLOCKED_ANTHEM,
                ((BLOCKED_BAND, PRIMARY),),
                (0, "2024-01-01T10:00:00Z", "alice"),
                (2, "2024-01-03T10:00:00Z", "alice"),
            ),
            album(BLOCKED_HITS, ((BLOCKED_BAND, ALBUM),), "2023-03-01T09:00:00Z"),
            artist(BLOCKED_BAND),
            artist(SHADOW_MC),
        ],
        [
            *HELD_IN_OWN_PLAYLISTS_AND_LIKED,
            held(
                NotEnforcedWhy.COLLABORATIVE,
                track_uri(BLOCKED_ANTHEM),
                ((BLOCKED_BAND, PRIMARY),),
                ROAD_TRIP,
                2,
            ),
        ],
    )


async def test_mentions_policy_also_removes_tracks_naming_a_blocked_artist_in_the_title(
    contract_recorder: ContractRecorder,
) -> None:
    library = await read(planner_sandbox(), contract_recorder)

    plan = make_plan(library, BLOCKLIST, PROTECT, PlanOptions(policy=Policy.MENTIONS))

    # "Lights (feat. Novak)" names Novak, not Nova; "Together (feat. Blocked Band)" and
    # "Rain (with Shadow MC)" credit the artist they name, so the credit is their reason.
    assert_plan(
        plan,
        [
            liked(TOGETHER, ((BLOCKED_BAND, FEATURED),), "2024-06-06T12:00:00Z"),
            liked(SHINE, ((NOVA, MENTION),), "2024-06-04T12:00:00Z"),
            liked(BLOCKED_ANTHEM, ((BLOCKED_BAND, PRIMARY),), "2024-06-02T12:00:00Z"),
            liked(GUEST_VERSE, ((SHADOW_MC, FEATURED),), "2024-06-01T12:00:00Z"),
            liked(RAIN, ((SHADOW_MC, FEATURED),), "2024-05-31T12:00:00Z"),
            item(
                ALICE_MIX,
                BLOCKED_ANTHEM,
                ((BLOCKED_BAND, PRIMARY),),
                (0, "2024-01-01T10:00:00Z", "alice"),
                (2, "2024-01-03T10:00:00Z", "alice"),
            ),
            item(
                ALICE_MIX,
                TOGETHER,
                ((BLOCKED_BAND, FEATURED),),
                (5, "2024-01-06T10:00:00Z", "alice"),
            ),
            item(ALICE_MIX, MIDNIGHT, ((NOVA, MENTION),), (6, "2024-01-07T10:00:00Z", "alice")),
            item(OLD_CHILL, RAIN, ((SHADOW_MC, FEATURED),), (0, None, None)),
            item(OLD_CHILL, NIGHT_DRIVE, ((NOVA, MENTION),), (1, None, None)),
            item(OLD_CHILL, SHINE, ((NOVA, MENTION),), (2, "2019-01-01T00:00:00Z", "alice")),
            *ALBUMS_AND_ARTISTS_BY_ANY_CREDIT,
        ],
        HELD_IN_OWN_PLAYLISTS_AND_LIKED + LEFT_IN_ROAD_TRIP,
    )


async def test_collaborative_playlists_are_edited_only_on_request(
    contract_recorder: ContractRecorder,
) -> None:
    options = PlanOptions(policy=Policy.FEATURED, include_collaborative=True)
    library = await read(planner_sandbox(), contract_recorder, options)

    plan = make_plan(library, BLOCKLIST, PROTECT, options)

    road_trip = [
        item(ROAD_TRIP, GUEST_VERSE, ((SHADOW_MC, FEATURED),), (0, "2024-02-01T18:00:00Z", "bob")),
        item(
            ROAD_TRIP,
            BLOCKED_ANTHEM,
            ((BLOCKED_BAND, PRIMARY),),
            (2, "2024-02-03T18:00:00Z", "alice"),
        ),
    ]
    # Playlists in /me/playlists order: Alice Mix, Keep Forever, Road Trip, ..., Old Chill.
    expected = FEATURED_ACTIONS[:6] + road_trip + FEATURED_ACTIONS[6:]
    assert_plan(plan, expected, HELD_IN_OWN_PLAYLISTS_AND_LIKED)
    assert plan.counts.playlists_touched == 3


async def test_a_followed_playlist_is_never_read_nor_planned(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = planner_sandbox()
    async with sandbox_client(sandbox, contract_recorder, user_id=ACCOUNT) as client:
        library = await read_library(client, ACCOUNT, PlanOptions())
        reads_of_items = client.calls["GET /v1/playlists/{playlist_id}/items"]

    plan = make_plan(library, BLOCKLIST, PROTECT, PlanOptions())

    # Bob's Favourites holds Blocked Anthem, but only Bob can change it.
    followed = next(p for p in library.playlists if p.playlist.id == BOB_FAVOURITES)
    assert followed.items is None
    assert reads_of_items == 4  # Alice Mix, Keep Forever, Road Trip, Old Chill: one page each
    assert BOB_FAVOURITES not in {a.container_id for a in plan.actions}
    assert BOB_FAVOURITES not in {n.container_id for n in plan.not_enforced}


async def test_an_unreadable_collaborative_playlist_is_left_unread(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = planner_sandbox()
    fixture = sandbox.dump()
    for playlist in fixture["playlists"]:
        if playlist["id"] == ROAD_TRIP:
            playlist["collaborators"] = []  # Alice was removed from it: Spotify answers 403
    sandbox.load_fixture(fixture)

    library = await read(sandbox, contract_recorder)
    plan = make_plan(library, BLOCKLIST, PROTECT, PlanOptions())

    road_trip = next(p for p in library.playlists if p.playlist.id == ROAD_TRIP)
    assert road_trip.items is None
    assert ROAD_TRIP not in {entry.container_id for entry in plan.not_enforced}
    assert plan.counts.playlists_read == 3


@pytest.mark.parametrize("policy", list(Policy))
async def test_reasons_name_the_blocked_artist_as_the_blocklist_knows_it(
    policy: Policy, contract_recorder: ContractRecorder
) -> None:
    library = await read(planner_sandbox(), contract_recorder)

    plan = make_plan(library, BLOCKLIST, PROTECT, PlanOptions(policy=policy))

    names = {artist.artist_id: artist.name for artist in BLOCKLIST}
    reasons = [r for a in plan.actions for r in a.reasons] + [
        r for n in plan.not_enforced for r in n.reasons
    ]
    assert reasons
    assert all(reason.artist_name == names[reason.artist_id] for reason in reasons)
