"""The Web UI's Markdown (enforcer/markdown.py), rendered by a CommonMark renderer as the UI
renders it: within Temporal's size limits whatever the plan, and names from Spotify shown
as written, never as Markdown or links."""

from __future__ import annotations

from markdown_it import MarkdownIt

from enforcer.markdown import (
    DETAILS_LIMIT,
    SUMMARY_LIMIT,
    enforcement_details,
    enforcement_summary,
    rollback_details,
)
from enforcer.models import (
    BlockedArtist,
    EntityType,
    NotEnforcedWhy,
    PlanCounts,
    PlanOptions,
    Policy,
)

HOSTILE = "[Click me](https://example.invalid) **loud** <b>x</b> `tick` # Björk_"
COUNTS = PlanCounts(
    scanned={EntityType.LIKED_SONG: 90_000, EntityType.PLAYLIST_ITEM: 400_000},
    actions={EntityType.LIKED_SONG: 1_234, EntityType.PLAYLIST_ITEM: 56_789},
    not_enforced={NotEnforcedWhy.LOCAL_FILE: 3},
    playlists_read=900,
    playlists_touched=410,
)


def details(blocklist: list[BlockedArtist]) -> str:
    return enforcement_details(
        namespace="default",
        batch_id="enforce/alice/abc",
        plan_id="abc",
        account_id="alice",
        options=PlanOptions(policy=Policy.MENTIONS),
        counts=COUNTS,
        blocklist=blocklist,
    )


def test_a_plans_details_name_its_counts_policy_and_artists_in_plain_words() -> None:
    text = details([BlockedArtist(artist_id="a1", name="Band A")])
    html = MarkdownIt().render(text)

    assert "liked songs: 1234 of 90000 read" in html
    assert "playlist entries: 56789 of 400000 read, in 410 of the 900 playlists read" in html
    assert "Blocked artists (1):</strong> Band A" in html
    assert "<strong>Policy:</strong> mentions: " in html
    assert "3 local files" in html
    assert 'href="/namespaces/default/workflows/rollback%2Fenforce%2Falice%2Fabc"' in html
    assert "liked_song" not in html
    assert "playlist_item" not in html


def test_a_huge_blocklist_of_hostile_names_stays_small_and_literal() -> None:
    blocklist = [BlockedArtist(artist_id=f"a{n}", name=f"{HOSTILE} {n:04}") for n in range(5000)]
    text = details(blocklist)
    html = MarkdownIt().render(text)

    assert len(text.encode()) < DETAILS_LIMIT
    assert "and 4960 more" in html
    assert "example.invalid" in html  # the name is there, as text...
    assert 'href="https://example.invalid' not in html  # ...never as a link
    assert "<b>x</b>" not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "Björk_" in html


def test_summaries_are_one_line_within_temporals_limit() -> None:
    summary = enforcement_summary("ålice" * 100, COUNTS)
    assert len(summary.encode()) <= SUMMARY_LIMIT
    assert "\n" not in summary
    assert summary.startswith("Remove 58023 items for ålice")


def test_a_rollbacks_details_link_back_to_the_batch_it_undoes() -> None:
    html = MarkdownIt().render(
        rollback_details(
            namespace="default",
            batch_id="enforce/alice/abc",
            account_id="alice",
            counts={EntityType.SAVED_ALBUM: 2},
            chosen=2,
        )
    )
    assert "Undoes 2 chosen items of the batch" in html
    assert 'href="/namespaces/default/workflows/enforce%2Falice%2Fabc"' in html
    assert "saved albums: 2" in html
