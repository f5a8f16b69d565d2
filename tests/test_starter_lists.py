"""``starter.py blocklist`` and ``starter.py protect``, as a person runs them.

The commands run through typer's ``CliRunner`` against an in-process sandbox (every
exchange contract-checked) and a fresh SQLite ledger in a temporary data directory.
What a test asserts is what the person sees: the output, the exit code, and the lists
as ``list --format json`` prints them afterwards.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Cli

# tests/fixtures/small_library.json
BLOCKED_BAND = "arBlockedBand000000000"
GOOD_SINGER = "arGoodSinger0000000000"
FEATURE_GUEST = "arFeatureGuest00000000"
INDIE_DUO = "arIndieDuo000000000000"
UNKNOWN_ARTIST = "arNobodyKnowsThem00000"
GOOD_MORNING = "trGoodMorning000000000"
DUO_SONG = "trDuoSong0000000000000"
ALICE_MIX = "plAliceMix000000000000"
ROAD_TRIP = "plRoadTrip000000000000"
BOBS_PICKS = "plBobsPicks00000000000"
UNKNOWN_TRACK = "trNobodyKnowsThis00000"
ARTIST_LOOKUP = "GET /v1/artists/{artist_id}"


@pytest.fixture
def alice(cli: Cli) -> Cli:
    cli.log_in("alice", "Alice")
    return cli


def artist_ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["artist_id"] for row in rows]


# --- blocklist add ------------------------------------------------------------------


def test_artists_are_added_by_id_uri_and_link_with_names_from_spotify(alice: Cli) -> None:
    out = alice.ok(
        "blocklist",
        "add",
        BLOCKED_BAND,
        f"spotify:artist:{GOOD_SINGER}",
        f"https://open.spotify.com/intl-de/artist/{FEATURE_GUEST}?si=abc",
    )

    rows = alice.listed("blocklist")
    assert {r["artist_id"]: r["name"] for r in rows} == {
        BLOCKED_BAND: "Blocked Band",
        GOOD_SINGER: "Good Singer",
        FEATURE_GUEST: "Feature Guest",
    }
    assert {r["artist_id"]: r["source"] for r in rows} == {
        BLOCKED_BAND: "id",
        GOOD_SINGER: "uri",
        FEATURE_GUEST: "url",
    }
    assert "Added to the blocklist:" in out
    assert f"Blocked Band ({BLOCKED_BAND})" in out
    assert alice.sandbox.counters.calls.get(ARTIST_LOOKUP, 0) == 3


def test_adding_again_says_what_was_already_there_and_keeps_the_first_entry(
    alice: Cli,
) -> None:
    alice.ok("blocklist", "add", BLOCKED_BAND)
    first = alice.listed("blocklist")

    out = alice.ok("blocklist", "add", f"spotify:artist:{BLOCKED_BAND}", INDIE_DUO)

    assert "Already on the blocklist:\n  Blocked Band" in out
    assert f"Added to the blocklist:\n  Indie Duo ({INDIE_DUO})" in out
    rows = {r["artist_id"]: r for r in alice.listed("blocklist")}
    assert rows[BLOCKED_BAND] == first[0]  # same source, same date
    assert set(rows) == {BLOCKED_BAND, INDIE_DUO}


def test_artists_are_added_from_a_file_with_comments_and_blank_lines(
    alice: Cli, tmp_path: Path
) -> None:
    listing = tmp_path / "never.txt"
    listing.write_text(
        "# artists I never want to hear\n"
        "\n"
        f"{BLOCKED_BAND}   # the worst\n"
        f"  https://open.spotify.com/artist/{INDIE_DUO}\n"
    )

    alice.ok("blocklist", "add", "--file", str(listing))

    rows = alice.listed("blocklist")
    assert {r["artist_id"]: r["source"] for r in rows} == {
        BLOCKED_BAND: "file:never.txt",
        INDIE_DUO: "file:never.txt",
    }


def test_an_unknown_artist_id_is_an_error_and_adds_nothing(alice: Cli) -> None:
    error = alice.fails("blocklist", "add", BLOCKED_BAND, UNKNOWN_ARTIST)

    assert f"unknown artist ID {UNKNOWN_ARTIST!r}" in error
    assert "argument 2" in error
    assert "nothing was changed" in error
    assert alice.listed("blocklist") == []


def test_a_garbage_link_is_named_and_nothing_is_sent_or_added(alice: Cli) -> None:
    garbage = "https://open.spotify.com/track/" + GOOD_MORNING  # a track, not an artist

    error = alice.fails("blocklist", "add", BLOCKED_BAND, garbage, "not-an-id")

    assert f"argument 2: {garbage!r} is not a Spotify artist" in error
    assert "argument 3: 'not-an-id' is not a Spotify artist" in error
    assert alice.sandbox.counters.calls.get(ARTIST_LOOKUP, 0) == 0
    assert alice.listed("blocklist") == []


def test_a_file_with_one_bad_line_is_refused_naming_the_line(alice: Cli, tmp_path: Path) -> None:
    listing = tmp_path / "artists.txt"
    listing.write_text(f"{BLOCKED_BAND}\n# fine so far\nspotify:artist:tooShort\n{INDIE_DUO}\n")

    error = alice.fails("blocklist", "add", "--file", str(listing))

    assert "artists.txt line 3: 'spotify:artist:tooShort' is not a Spotify artist" in error
    assert alice.listed("blocklist") == []


def test_a_file_naming_an_unknown_artist_is_refused_naming_the_line(
    alice: Cli, tmp_path: Path
) -> None:
    listing = tmp_path / "artists.txt"
    listing.write_text(f"{BLOCKED_BAND}\n\n{UNKNOWN_ARTIST}\n")

    error = alice.fails("blocklist", "add", "--file", str(listing))

    assert f"artists.txt line 3: unknown artist ID {UNKNOWN_ARTIST!r}" in error
    assert alice.listed("blocklist") == []


def test_a_rate_limit_mid_way_says_how_long_to_wait_and_adds_nothing(alice: Cli) -> None:
    alice.sandbox.settings.rate_limit_budget = 1
    alice.sandbox.settings.rate_limit_retry_after = 7

    error = alice.fails("blocklist", "add", BLOCKED_BAND, INDIE_DUO)

    assert "Spotify asks to wait 7 s; nothing was changed" in error
    assert alice.listed("blocklist") == []  # listing reads the ledger only, not Spotify


def test_a_missing_file_and_no_values_at_all_are_clear_errors(alice: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"

    assert f"{missing}: no such file" in alice.fails("blocklist", "add", "--file", str(missing))
    assert "nothing given" in alice.fails("blocklist", "add")


# --- blocklist remove and list ------------------------------------------------------


def test_artists_are_removed_by_any_form(alice: Cli) -> None:
    alice.ok("blocklist", "add", BLOCKED_BAND, INDIE_DUO, GOOD_SINGER)

    out = alice.ok(
        "blocklist",
        "remove",
        f"https://open.spotify.com/artist/{BLOCKED_BAND}",
        f"spotify:artist:{INDIE_DUO}",
    )

    assert f"Blocked Band ({BLOCKED_BAND})" in out
    assert artist_ids(alice.listed("blocklist")) == [GOOD_SINGER]


def test_removing_an_artist_not_on_the_list_is_an_error_and_removes_nothing(
    alice: Cli,
) -> None:
    alice.ok("blocklist", "add", BLOCKED_BAND)

    error = alice.fails("blocklist", "remove", BLOCKED_BAND, INDIE_DUO)

    assert repr(INDIE_DUO) in error
    assert artist_ids(alice.listed("blocklist")) == [BLOCKED_BAND]
    assert "is not a Spotify artist" in alice.fails("blocklist", "remove", "rubbish")


def test_an_empty_blocklist_lists_fine_in_every_format(alice: Cli) -> None:
    assert "is empty" in alice.ok("blocklist", "list")
    assert json.loads(alice.ok("blocklist", "list", "--format", "json")) == []
    assert alice.ok("blocklist", "list", "--format", "csv") == "name,artist_id,source,added_at\n"


def test_the_blocklist_lists_as_table_json_and_csv(alice: Cli) -> None:
    alice.ok("blocklist", "add", BLOCKED_BAND, f"spotify:artist:{INDIE_DUO}")

    table = alice.ok("blocklist", "list")
    rows = alice.listed("blocklist")
    from_csv = list(csv.DictReader(io.StringIO(alice.ok("blocklist", "list", "--format", "csv"))))

    assert "Blocklist of alice (2)" in table
    for name, artist_id, source in [
        ("Blocked Band", BLOCKED_BAND, "id"),
        ("Indie Duo", INDIE_DUO, "uri"),
    ]:
        assert any(
            name in line and artist_id in line and source in line for line in table.splitlines()
        )
    assert from_csv == rows
    for row in rows:
        assert set(row) == {"name", "artist_id", "source", "added_at"}
        assert datetime.fromisoformat(row["added_at"]).tzinfo is not None


# --- protect ------------------------------------------------------------------------


def test_tracks_and_playlists_are_protected_by_id_uri_and_link(alice: Cli) -> None:
    out = alice.ok(
        "protect",
        "add",
        GOOD_MORNING,
        f"https://open.spotify.com/track/{DUO_SONG}",
        f"spotify:playlist:{ALICE_MIX}",
    )
    alice.ok("protect", "add", "--kind", "playlist", ROAD_TRIP)

    rows = alice.listed("protect")
    assert {(r["kind"], r["spotify_id"], r["name"]) for r in rows} == {
        ("track", GOOD_MORNING, "Good Morning"),
        ("track", DUO_SONG, "Duo Song"),
        ("playlist", ALICE_MIX, "Alice Mix"),
        ("playlist", ROAD_TRIP, "Road Trip"),
    }
    assert f"track Good Morning ({GOOD_MORNING})" in out
    assert "Already on the protect list" not in out
    assert "Already on the protect list:\n  track Good Morning" in alice.ok(
        "protect", "add", GOOD_MORNING
    )


def test_a_followed_playlist_of_someone_else_can_be_protected(alice: Cli) -> None:
    alice.ok("protect", "add", f"spotify:playlist:{BOBS_PICKS}")

    assert [(r["spotify_id"], r["name"]) for r in alice.listed("protect")] == [
        (BOBS_PICKS, "Bob's Picks")
    ]


def test_protecting_an_unknown_or_malformed_item_adds_nothing(alice: Cli) -> None:
    unknown = alice.fails("protect", "add", GOOD_MORNING, UNKNOWN_TRACK)
    malformed = alice.fails("protect", "add", GOOD_MORNING, f"spotify:artist:{BLOCKED_BAND}")
    bad_kind = alice.fails("protect", "add", "--kind", "album", GOOD_MORNING)

    assert f"argument 2: unknown track ID {UNKNOWN_TRACK!r}" in unknown
    assert f"argument 2: 'spotify:artist:{BLOCKED_BAND}' is not a Spotify" in malformed
    assert "--kind 'album': must be track or playlist" in bad_kind
    assert alice.listed("protect") == []


def test_protected_items_are_removed_and_a_missing_one_removes_nothing(alice: Cli) -> None:
    alice.ok("protect", "add", GOOD_MORNING, f"spotify:playlist:{ALICE_MIX}")

    error = alice.fails("protect", "remove", f"spotify:playlist:{ALICE_MIX}", DUO_SONG)
    assert f"argument 2: {DUO_SONG!r}" in error
    assert len(alice.listed("protect")) == 2

    out = alice.ok("protect", "remove", "--kind", "playlist", ALICE_MIX)
    assert f"playlist Alice Mix ({ALICE_MIX})" in out
    assert [r["spotify_id"] for r in alice.listed("protect")] == [GOOD_MORNING]


def test_the_protect_list_prints_empty_and_full(alice: Cli) -> None:
    assert "Nothing is protected for alice" in alice.ok("protect", "list")
    alice.ok("protect", "add", GOOD_MORNING)

    table = alice.ok("protect", "list")
    from_csv = list(csv.DictReader(io.StringIO(alice.ok("protect", "list", "--format", "csv"))))

    assert "Good Morning" in table
    assert GOOD_MORNING in table
    assert from_csv == alice.listed("protect")


# --- accounts -----------------------------------------------------------------------


def test_without_a_login_every_command_says_to_log_in(cli: Cli) -> None:
    assert "no account: run `starter.py login`" in cli.fails("blocklist", "list")
    assert "no account: run `starter.py login`" in cli.fails("blocklist", "add", BLOCKED_BAND)


def test_several_accounts_need_account_and_each_keeps_its_own_lists(alice: Cli) -> None:
    alice.log_in("bob", "Bob")

    error = alice.fails("blocklist", "add", BLOCKED_BAND)
    assert "'alice', 'bob'" in error
    assert "--account" in error
    assert "--account" in alice.fails("protect", "list")

    alice.ok("blocklist", "add", "--account", "bob", BLOCKED_BAND)
    assert artist_ids(alice.listed("blocklist", "--account", "bob")) == [BLOCKED_BAND]
    assert alice.listed("blocklist", "--account", "alice") == []
    assert "no account 'carol'" in alice.fails("blocklist", "list", "--account", "carol")


def test_no_token_appears_in_any_output(alice: Cli) -> None:
    tokens = alice.log_in("alice", "Alice")
    secrets = [tokens.access_token.get_secret_value(), tokens.refresh_token.get_secret_value()]

    results = [
        alice("blocklist", "add", BLOCKED_BAND),
        alice("blocklist", "add", UNKNOWN_ARTIST),
        alice("blocklist", "list"),
        alice("protect", "add", "garbage"),
    ]

    for result in results:
        for secret in secrets:
            assert secret not in result.stdout + result.stderr
