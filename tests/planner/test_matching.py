"""The planner's rules on libraries built in memory: title mentions, local files,
episodes, playlists of others, protection and a bad blocklist."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from enforcer.library import playlist_scope, reads_items
from enforcer.models import (
    BlockedArtist,
    EntityType,
    LibrarySnapshot,
    MatchRule,
    NotEnforcedWhy,
    PlanOptions,
    Policy,
    ProtectList,
    ScannedPlaylist,
)
from enforcer.planner import PlanInputError, make_plan
from enforcer.spotify.models import (
    Episode,
    Playlist,
    PlaylistItem,
    SavedTrack,
    SimplifiedArtist,
    Track,
)

ME = "me"
BLOCKED = BlockedArtist(artist_id="blocked", name="Blocked")
GOOD = SimplifiedArtist(id="good", name="Good Artist")
DUO = BlockedArtist(artist_id="duo", name="Salt & Pepper")
WHEN = datetime(2024, 1, 1, tzinfo=UTC)
NOTHING_PROTECTED = ProtectList()


def track(title: str, *artists: SimplifiedArtist, number: int = 0) -> Track:
    return Track(id=f"t{number}", name=title, uri=f"spotify:track:t{number}", artists=list(artists))


def liked_library(*tracks: Track) -> LibrarySnapshot:
    return LibrarySnapshot(
        account_id=ME, liked_songs=tuple(SavedTrack(added_at=WHEN, track=t) for t in tracks)
    )


def playlist(owner: str = ME, *, collaborative: bool = False, number: int = 0) -> Playlist:
    return Playlist(
        id=f"p{number}",
        name=f"Playlist {number}",
        owner_id=owner,
        collaborative=collaborative,
        snapshot_id=f"snap{number}",
        total_items=0,
    )


def entries(*contents: Track | Episode | None, local: bool = False) -> tuple[PlaylistItem, ...]:
    return tuple(
        PlaylistItem(position=i, added_at=WHEN, added_by=ME, is_local=local, item=content)
        for i, content in enumerate(contents)
    )


def mentioned(title: str, *blocklist: BlockedArtist) -> list[str]:
    plan = make_plan(
        liked_library(track(title, GOOD)),
        blocklist or (BLOCKED, DUO),
        NOTHING_PROTECTED,
        PlanOptions(policy=Policy.MENTIONS),
    )
    return [reason.artist_name for action in plan.actions for reason in action.reasons]


@pytest.mark.parametrize(
    ("title", "names"),
    [
        ("Song (feat. Blocked)", ["Blocked"]),
        ("Song ft. Blocked", ["Blocked"]),
        ("Song (with Blocked)", ["Blocked"]),
        ("Other x Blocked", ["Blocked"]),
        ("Song featuring Blocked - Radio Edit", ["Blocked"]),
        ("SONG (FEAT. BLOCKED)", ["Blocked"]),
        ("Song (feat. Someone, Blocked & Another)", ["Blocked"]),
        ("Song (feat. Someone and Blocked)", ["Blocked"]),
        ("Song (feat. Salt & Pepper)", ["Salt & Pepper"]),
        ("Song (with Salt   &  Pepper, Blocked)", ["Salt & Pepper", "Blocked"]),
        # Not whole names, or no credit word before them:
        ("Song (feat. Blockedness)", []),
        ("Song (feat. Blocked Remix)", []),
        ("Unblocked (feat. Someone)", []),
        ("Blocked", []),
        ("Defeat Blocked", []),
        ("Withblocked", []),
        ("Song (feat. Pepper)", []),
    ],
)
def test_a_title_mention_is_a_whole_name_after_a_credit_word(title: str, names: list[str]) -> None:
    assert mentioned(title) == names


def test_a_mention_is_read_as_the_longest_blocked_name_it_holds() -> None:
    salt = BlockedArtist(artist_id="salt", name="Salt")
    assert mentioned("Song (feat. Salt & Pepper)", salt, DUO) == ["Salt & Pepper"]
    assert mentioned("Song (feat. Salt & Vinegar)", salt, DUO) == ["Salt"]


def test_a_title_mention_counts_only_under_the_mentions_policy() -> None:
    library = liked_library(track("Song (feat. Blocked)", GOOD))
    for policy in (Policy.PRIMARY, Policy.FEATURED):
        plan = make_plan(library, [BLOCKED], NOTHING_PROTECTED, PlanOptions(policy=policy))
        assert plan.actions == ()


def test_two_blocked_artists_of_one_name_are_both_named_by_a_mention() -> None:
    other = BlockedArtist(artist_id="blocked-2", name="blocked")
    plan = make_plan(
        liked_library(track("Song (feat. Blocked)", GOOD)),
        [BLOCKED, other],
        NOTHING_PROTECTED,
        PlanOptions(policy=Policy.MENTIONS),
    )
    assert [r.artist_id for r in plan.actions[0].reasons] == ["blocked", "blocked-2"]


def test_a_credit_counts_by_artist_id_even_under_another_name() -> None:
    renamed = SimplifiedArtist(id="blocked", name="Blocked (the artist formerly known as)")
    plan = make_plan(
        liked_library(track("Song", GOOD, renamed)), [BLOCKED], NOTHING_PROTECTED, PlanOptions()
    )
    assert [(r.artist_name, r.rule) for r in plan.actions[0].reasons] == [
        ("Blocked", MatchRule.FEATURED_ARTIST)
    ]
    assert plan.actions[0].artist_names == ("Good Artist", "Blocked (the artist formerly known as)")


def test_a_same_named_artist_with_another_id_is_not_blocked() -> None:
    namesake = SimplifiedArtist(id="someone-else", name="Blocked")
    plan = make_plan(
        liked_library(track("Song", namesake)), [BLOCKED], NOTHING_PROTECTED, PlanOptions()
    )
    assert plan.actions == ()


@pytest.mark.parametrize(
    ("policy", "artist_name", "title", "rules"),
    [
        (Policy.PRIMARY, "Blocked", "Tape", [MatchRule.PRIMARY_ARTIST]),
        (Policy.FEATURED, "  blocked ", "Tape", [MatchRule.PRIMARY_ARTIST]),
        (Policy.FEATURED, "Blocked Tribute Band", "Tape", []),
        (Policy.FEATURED, "Me", "Tape (feat. Blocked)", []),
        (Policy.MENTIONS, "Me", "Tape (feat. Blocked)", [MatchRule.TITLE_MENTION]),
    ],
)
def test_a_local_file_matches_by_name_and_is_listed_as_not_enforceable(
    policy: Policy, artist_name: str, title: str, rules: list[MatchRule]
) -> None:
    local = Track(
        name=title,
        uri="spotify:local:x:y:z:1",
        is_local=True,
        artists=[SimplifiedArtist(name=artist_name)],
    )
    library = LibrarySnapshot(
        account_id=ME,
        playlists=(ScannedPlaylist(playlist=playlist(), items=entries(local, local=True)),),
    )

    plan = make_plan(library, [BLOCKED], NOTHING_PROTECTED, PlanOptions(policy=policy))

    assert plan.actions == ()
    assert [[r.rule for r in n.reasons] for n in plan.not_enforced] == ([rules] if rules else [])
    assert all(n.why is NotEnforcedWhy.LOCAL_FILE for n in plan.not_enforced)


def test_an_episode_never_matches() -> None:
    episode = Episode(id="e1", name="Talk (feat. Blocked)", uri="spotify:episode:e1")
    library = LibrarySnapshot(
        account_id=ME, playlists=(ScannedPlaylist(playlist=playlist(), items=entries(episode)),)
    )
    plan = make_plan(library, [BLOCKED], NOTHING_PROTECTED, PlanOptions(policy=Policy.MENTIONS))
    assert (plan.actions, plan.not_enforced) == ((), ())
    assert plan.counts.scanned[EntityType.PLAYLIST_ITEM] == 1


def test_a_read_playlist_of_someone_else_lists_only_its_blocked_items_as_not_owned() -> None:
    blocked_track = track("Bad", SimplifiedArtist(id="blocked", name="Blocked"), number=1)
    fine_track = track("Fine", GOOD, number=2)
    library = LibrarySnapshot(
        account_id=ME,
        playlists=(
            ScannedPlaylist(
                playlist=playlist("someone"), items=entries(fine_track, None, blocked_track)
            ),
        ),
    )

    plan = make_plan(library, [BLOCKED], NOTHING_PROTECTED, PlanOptions())

    assert plan.actions == ()
    assert [(n.why, n.uri, n.positions) for n in plan.not_enforced] == [
        (NotEnforcedWhy.NOT_OWNED, "spotify:track:t1", (2,))
    ]


def test_a_protected_playlist_lists_its_blocked_items_but_not_its_unavailable_ones() -> None:
    blocked_track = track("Bad", SimplifiedArtist(id="blocked", name="Blocked"), number=1)
    library = LibrarySnapshot(
        account_id=ME,
        playlists=(ScannedPlaylist(playlist=playlist(), items=entries(None, blocked_track)),),
    )
    protect = ProtectList(playlist_ids=frozenset({"p0"}))

    plan = make_plan(library, [BLOCKED], protect, PlanOptions())

    assert plan.actions == ()
    assert [(n.why, n.positions) for n in plan.not_enforced] == [
        (NotEnforcedWhy.PROTECTED_PLAYLIST, (1,))
    ]


@pytest.mark.parametrize(
    ("owner", "collaborative", "include", "scope", "read"),
    [
        (ME, False, False, None, True),
        (ME, True, False, None, True),
        ("other", True, True, None, True),
        ("other", True, False, NotEnforcedWhy.COLLABORATIVE, True),
        ("other", False, True, NotEnforcedWhy.NOT_OWNED, False),
    ],
)
def test_which_playlists_are_edited_and_read(
    owner: str,
    collaborative: bool,
    include: bool,
    scope: NotEnforcedWhy | None,
    read: bool,
) -> None:
    subject = playlist(owner, collaborative=collaborative)
    options = PlanOptions(include_collaborative=include)
    assert playlist_scope(subject, ME, options) is scope
    assert reads_items(subject, ME, options) is read


def test_an_empty_blocklist_is_refused() -> None:
    with pytest.raises(PlanInputError, match="blocklist is empty"):
        make_plan(liked_library(), [], NOTHING_PROTECTED, PlanOptions())


def test_one_artist_id_under_two_names_is_refused_naming_both() -> None:
    with pytest.raises(PlanInputError, match=r"'blocked'.*'Blocked'.*'Other Name'"):
        make_plan(
            liked_library(),
            [BLOCKED, BlockedArtist(artist_id="blocked", name="Other Name")],
            NOTHING_PROTECTED,
            PlanOptions(),
        )


def test_a_blocklist_in_another_order_or_with_repeats_is_the_same_plan() -> None:
    library = liked_library(track("Song", SimplifiedArtist(id="blocked", name="Blocked")))
    once = make_plan(library, [BLOCKED, DUO], NOTHING_PROTECTED, PlanOptions())
    again = make_plan(library, [DUO, BLOCKED, DUO], NOTHING_PROTECTED, PlanOptions())
    assert again == once
    assert [a.artist_id for a in once.blocklist] == ["blocked", "duo"]
