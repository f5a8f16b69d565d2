"""The dry run a person reads: the hand-written library's plan as a table, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json

import pytest

from enforcer.dryrun import CSV_COLUMNS, render_plan
from enforcer.models import BlockedArtist, Plan, PlanOptions, Policy
from enforcer.planner import make_plan
from tests.planner._library import (
    ALICE_MIX,
    BLOCKLIST,
    OLD_CHILL,
    PROTECT,
    planner_sandbox,
    read,
)
from tests.support.contract import ContractRecorder


@pytest.fixture
async def plan(contract_recorder: ContractRecorder) -> Plan:
    library = await read(planner_sandbox(), contract_recorder)
    return make_plan(library, BLOCKLIST, PROTECT, PlanOptions(policy=Policy.MENTIONS))


def test_the_table_shows_counts_playlists_reasons_what_stays_and_how_to_enforce(
    plan: Plan,
) -> None:
    table = render_plan(plan, "table")
    lines = table.splitlines()

    counts = {line.split("│")[1].strip(): line for line in lines if line.count("│") == 5}
    assert [cell.strip() for cell in counts["Liked songs"].split("│")[2:5]] == ["7", "5", "1"]
    assert counts["Saved albums"].split("│")[3].strip() == "2"
    # The playlists touched, by name and ID, with how many tracks and entries go.
    touched = {line.split("│")[2].strip(): line for line in lines if ALICE_MIX in line}
    assert [cell.strip() for cell in touched[ALICE_MIX].split("│")[1:5]] == [
        "Alice Mix",
        ALICE_MIX,
        "3",
        "4",
    ]
    assert any(OLD_CHILL in line and "Old Chill" in line for line in lines)
    assert "Playlists touched: 2 of 4 read" in table
    # Examples with their reasons, five at most per type.
    flat = " ".join(table.split())
    assert (
        "Together (feat. Blocked Band) — Good Singer feat. Blocked Band: "
        "featured artist Blocked Band" in flat
    )
    assert "Blocked Anthem — Blocked Band (in Alice Mix, positions 0, 2)" in flat
    assert (
        "Midnight x Nova — Indie Duo (in Alice Mix, position 6): named in the title: Nova" in flat
    )
    assert "Playlist items (6): " in flat
    assert "… and 1 more" in flat
    # What cannot be enforced, grouped by why, each with its explanation.
    assert "Local files (1): Spotify's API can neither add nor remove local files" in flat
    assert "Demo Tape (in Alice Mix, position 3): primary artist Blocked Band" in flat
    assert "Unavailable entries (1):" in flat
    assert "Protected tracks (2): On your protect list" in flat
    assert "Protected playlists (1):" in flat
    assert "Collaborative playlists (2): Someone else's collaborative playlist" in flat
    assert "Guest Verse (in Road Trip, position 0): featured artist Shadow MC" in flat
    assert f"Plan ID: {plan.id}" in table
    assert f"python starter.py enforce {plan.id}" in table


async def test_a_plan_without_changes_says_there_is_nothing_to_enforce(
    contract_recorder: ContractRecorder,
) -> None:
    library = await read(planner_sandbox(), contract_recorder)
    stranger = BlockedArtist(artist_id="1NobodyInThisLibrary00", name="Nobody Here")
    plan = make_plan(library, [stranger], PROTECT, PlanOptions(policy=Policy.MENTIONS))

    table = render_plan(plan, "table")

    assert plan.actions == ()
    assert f"Plan ID: {plan.id}" in table
    assert "Nothing to enforce: the library already obeys the blocklist." in table
    assert "starter.py enforce" not in table


def test_the_table_fits_its_width_and_has_no_escape_codes_unless_asked(plan: Plan) -> None:
    narrow = render_plan(plan, "table", width=60, examples=1)

    assert "\x1b" not in narrow
    assert max(len(line) for line in narrow.splitlines()) <= 60
    assert "Liked songs (5):" in narrow
    assert "… and 4 more" in narrow
    assert "\x1b[" in render_plan(plan, "table", color=True)


def test_names_that_look_like_markup_are_printed_as_they_are(plan: Plan) -> None:
    odd = plan.model_copy(
        update={"actions": (plan.actions[0].model_copy(update={"name": "[bold]Song[/bold]"}),)}
    )
    assert "[bold]Song[/bold] — Good Singer feat. Blocked Band" in render_plan(odd, "table")


def test_json_is_the_whole_plan_and_reads_back_as_it(plan: Plan) -> None:
    text = render_plan(plan, "json")

    assert Plan.model_validate_json(text) == plan
    assert Plan.model_validate(json.loads(text)) == plan
    assert render_plan(Plan.model_validate_json(text), "json") == text
    assert list(json.loads(text)) == sorted(json.loads(text))


def test_csv_has_one_row_per_action_and_per_entry_not_enforced(plan: Plan) -> None:
    rows = list(csv.DictReader(io.StringIO(render_plan(plan, "csv"))))

    assert len(rows) == len(plan.actions) + len(plan.not_enforced) == 15 + 7
    assert tuple(rows[0]) == CSV_COLUMNS
    duplicated = next(
        row for row in rows if row["playlist_id"] == ALICE_MIX and row["name"] == "Blocked Anthem"
    )
    assert duplicated == {
        "kind": "action",
        "entity_type": "playlist_item",
        "name": "Blocked Anthem",
        "artists": "Blocked Band",
        "playlist": "Alice Mix",
        "playlist_id": ALICE_MIX,
        "positions": "0;2",
        "rules": "primary_artist",
        "blocked_artists": "Blocked Band",
        "why": "",
        "uri": "spotify:track:trBlockedAnthem0000000",
    }
    local = next(row for row in rows if row["why"] == "local_file")
    assert (local["kind"], local["name"], local["positions"]) == ("not_enforced", "Demo Tape", "3")
    assert [row["kind"] for row in rows].count("not_enforced") == 7


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"fmt": "xml"}, "unknown format 'xml'"),
        ({"fmt": "table", "examples": -1}, "examples must be 0 or more, got -1"),
        ({"fmt": "table", "width": 10}, "width must be at least 40 characters, got 10"),
    ],
)
def test_bad_arguments_are_refused_naming_the_bad_value(
    plan: Plan, arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render_plan(plan, **arguments)  # type: ignore[arg-type]
