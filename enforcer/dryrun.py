"""A plan, shown to a person before anything is touched: a table, JSON or CSV.

- ``table``: what would be removed per entity type, the playlists touched with how many
  items each, examples with their reasons, what cannot be enforced grouped by why
  (each with a one-line explanation), and the plan ID with the command that enforces it
  (or, for a plan without actions, that there is nothing to enforce).
- ``json``: the whole plan, keys sorted, so that equal plans print equal text.
- ``csv``: one row per action and per not-enforced entry.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Literal, TypeVar

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from enforcer.models import (
    EntityType,
    MatchRule,
    NotEnforced,
    NotEnforcedWhy,
    Plan,
    PlannedAction,
    PlaylistItemBefore,
    Reason,
)

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "NOTHING_TO_ENFORCE",
    "WHY_EXPLANATIONS",
    "PlanFormat",
    "enforce_command",
    "render_plan",
]

PlanFormat = Literal["table", "json", "csv"]
FORMATS: tuple[PlanFormat, ...] = ("table", "json", "csv")
CSV_COLUMNS = (
    "kind",
    "entity_type",
    "name",
    "artists",
    "playlist",
    "playlist_id",
    "positions",
    "rules",
    "blocked_artists",
    "why",
    "uri",
)
MIN_WIDTH = 40
NOTHING_TO_ENFORCE = "Nothing to enforce: the library already obeys the blocklist."

_Member = TypeVar("_Member")

ENTITY_TITLES: Final = {
    EntityType.LIKED_SONG: "Liked songs",
    EntityType.PLAYLIST_ITEM: "Playlist items",
    EntityType.SAVED_ALBUM: "Saved albums",
    EntityType.FOLLOWED_ARTIST: "Followed artists",
}
_RULE_WORDS = {
    MatchRule.PRIMARY_ARTIST: "primary artist",
    MatchRule.FEATURED_ARTIST: "featured artist",
    MatchRule.TITLE_MENTION: "named in the title:",
    MatchRule.ALBUM_ARTIST: "album artist",
    MatchRule.FOLLOWED_ARTIST: "followed blocked artist",
}
_WHY_TITLES = {
    NotEnforcedWhy.LOCAL_FILE: "Local files",
    NotEnforcedWhy.UNAVAILABLE: "Unavailable entries",
    NotEnforcedWhy.PROTECTED_TRACK: "Protected tracks",
    NotEnforcedWhy.PROTECTED_PLAYLIST: "Protected playlists",
    NotEnforcedWhy.COLLABORATIVE: "Collaborative playlists",
    NotEnforcedWhy.NOT_OWNED: "Playlists of others",
}
WHY_EXPLANATIONS = {
    NotEnforcedWhy.LOCAL_FILE: (
        "Spotify's API can neither add nor remove local files: remove them in the app."
    ),
    NotEnforcedWhy.UNAVAILABLE: (
        "Spotify no longer sends what these entries were, so their artists cannot be checked."
    ),
    NotEnforcedWhy.PROTECTED_TRACK: "On your protect list: never touched.",
    NotEnforcedWhy.PROTECTED_PLAYLIST: "The playlist is on your protect list: never edited.",
    NotEnforcedWhy.COLLABORATIVE: (
        "Someone else's collaborative playlist: edited only if you include collaborative playlists."
    ),
    NotEnforcedWhy.NOT_OWNED: "Someone else's playlist: only its owner can change it.",
}


def enforce_command(plan: Plan) -> str:
    """The command that enforces ``plan``."""
    return f"python starter.py enforce {plan.id}"


def render_plan(
    plan: Plan,
    fmt: PlanFormat,
    *,
    examples: int = 5,
    width: int = 100,
    color: bool = False,
) -> str:
    """``plan`` as text in ``fmt``.

    ``examples`` and ``width`` shape the table only: at most ``examples`` examples per
    entity type and per reason not enforced, lines of at most ``width`` characters.
    ``color`` adds terminal colours to the table (for a TTY); without it the text
    holds no escape codes.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if examples < 0:
        raise ValueError(f"examples must be 0 or more, got {examples}")
    if width < MIN_WIDTH:
        raise ValueError(f"width must be at least {MIN_WIDTH} characters, got {width}")
    if fmt == "json":
        return _json(plan)
    if fmt == "csv":
        return _csv(plan)
    return _table(plan, examples=examples, width=width, color=color)


# JSON and CSV -------------------------------------------------------------------------


def _json(plan: Plan) -> str:
    return json.dumps(plan.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False)


def _csv(plan: Plan) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for action in plan.actions:
        before = action.before
        playlist_name = playlist_id = positions = ""
        if isinstance(before, PlaylistItemBefore):
            playlist_name, playlist_id = before.playlist_name, before.playlist_id
            positions = _positions(o.position for o in before.occurrences)
        writer.writerow(
            (
                "action",
                action.entity_type.value,
                action.name,
                "; ".join(action.artist_names),
                playlist_name,
                playlist_id,
                positions,
                _rules(action.reasons),
                _blocked_names(action.reasons),
                "",
                action.uri,
            )
        )
    for entry in plan.not_enforced:
        writer.writerow(
            (
                "not_enforced",
                entry.entity_type.value,
                entry.name,
                "",
                entry.container_name or "",
                entry.container_id or "",
                _positions(entry.positions),
                _rules(entry.reasons),
                _blocked_names(entry.reasons),
                entry.why.value,
                entry.uri or "",
            )
        )
    return out.getvalue()


def _positions(positions: Iterable[int]) -> str:
    return ";".join(str(position) for position in positions)


def _rules(reasons: Sequence[Reason]) -> str:
    return ";".join(dict.fromkeys(reason.rule.value for reason in reasons))


def _blocked_names(reasons: Sequence[Reason]) -> str:
    return "; ".join(dict.fromkeys(reason.artist_name for reason in reasons))


# The table ----------------------------------------------------------------------------


def _table(plan: Plan, *, examples: int, width: int, color: bool) -> str:
    out = io.StringIO()
    console = Console(
        file=out,
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        no_color=not color,
        markup=False,
        emoji=False,
        highlight=False,
    )
    parts: list[RenderableType] = [
        _heading(plan),
        _counts_table(plan),
        _playlists_table(plan),
        _examples(plan, examples),
        _not_enforced(plan, examples),
        _closing(plan),
    ]
    for part in parts:
        console.print(part)
        console.print()
    # Rich pads titles and wrapped lines to the full width: trailing blanks help no one.
    return "\n".join(line.rstrip() for line in out.getvalue().rstrip().splitlines()) + "\n"


def _closing(plan: Plan) -> Text:
    next_step = f"To enforce it: {enforce_command(plan)}" if plan.actions else NOTHING_TO_ENFORCE
    return Text(f"Plan ID: {plan.id}\n{next_step}")


def _heading(plan: Plan) -> Text:
    collaborative = "edited" if plan.options.include_collaborative else "left alone (not requested)"
    blocked = ", ".join(artist.name or artist.artist_id for artist in plan.blocklist)
    return Text(
        f"Dry run for {plan.account_id}: nothing has been changed.\n"
        f"Policy: {plan.options.policy.value}. Collaborative playlists of others: "
        f"{collaborative}.\nBlocked artists ({len(plan.blocklist)}): {blocked}"
    )


def _counts_table(plan: Plan) -> Table:
    counts = plan.counts
    held: dict[EntityType, int] = {}
    for entry in plan.not_enforced:
        held[entry.entity_type] = held.get(entry.entity_type, 0) + 1
    table = Table(title="What the plan removes", title_justify="left")
    table.add_column("What")
    table.add_column("Scanned", justify="right")
    table.add_column("To remove", justify="right")
    table.add_column("Not enforced", justify="right")
    for entity_type, title in ENTITY_TITLES.items():
        table.add_row(
            Text(title),
            Text(str(counts.scanned.get(entity_type, 0))),
            Text(str(counts.actions.get(entity_type, 0))),
            Text(str(held.get(entity_type, 0))),
        )
    return table


def _playlists_table(plan: Plan) -> RenderableType:
    touched: dict[str, tuple[str, int, int]] = {}
    for action in plan.actions:
        before = action.before
        if isinstance(before, PlaylistItemBefore):
            name, tracks, entries = touched.get(before.playlist_id, (before.playlist_name, 0, 0))
            touched[before.playlist_id] = (name, tracks + 1, entries + len(before.occurrences))
    title = (
        f"Playlists touched: {plan.counts.playlists_touched} of {plan.counts.playlists_read} read"
    )
    if not touched:
        return Text(f"{title}: none.")
    table = Table(title=title, title_justify="left")
    table.add_column("Playlist")
    table.add_column("ID")
    table.add_column("Tracks to remove", justify="right")
    table.add_column("Entries", justify="right")
    for playlist_id, (name, tracks, entries) in touched.items():
        table.add_row(Text(name), Text(playlist_id), Text(str(tracks)), Text(str(entries)))
    return table


def _examples(plan: Plan, limit: int) -> RenderableType:
    lines = Text("Examples\n")
    for entity_type, title in ENTITY_TITLES.items():
        actions = [action for action in plan.actions if action.entity_type is entity_type]
        if not actions:
            continue
        _append_group(lines, f"{title} ({len(actions)}):", actions, _action_line, limit)
    if not plan.actions:
        lines.append("Nothing to remove.\n")
    lines.rstrip()
    return lines


def _not_enforced(plan: Plan, limit: int) -> RenderableType:
    if not plan.not_enforced:
        return Text("Everything that matched can be enforced.")
    lines = Text("What cannot be enforced\n")
    for why, title in _WHY_TITLES.items():
        entries = [entry for entry in plan.not_enforced if entry.why is why]
        if not entries:
            continue
        heading = f"{title} ({len(entries)}): {WHY_EXPLANATIONS[why]}"
        _append_group(lines, heading, entries, _not_enforced_line, limit)
    lines.rstrip()
    return lines


def _append_group(
    lines: Text,
    heading: str,
    members: Sequence[_Member],
    describe: Callable[[_Member], str],
    limit: int,
) -> None:
    """``heading``, then at most ``limit`` members, one a line, and how many more there are."""
    lines.append(f"{heading}\n")
    for member in members[:limit]:
        lines.append(f"  - {describe(member)}\n")
    if len(members) > limit:
        lines.append(f"  … and {len(members) - limit} more\n")


def _action_line(action: PlannedAction) -> str:
    if action.entity_type is EntityType.FOLLOWED_ARTIST:
        return f"{action.name}: blocked, and followed"
    if action.entity_type is EntityType.SAVED_ALBUM:
        subject = f"{action.name} — {', '.join(action.artist_names)}"
    else:
        subject = f"{action.name} — {_credits(action.artist_names)}"
    before = action.before
    if isinstance(before, PlaylistItemBefore):
        where = _where(before.playlist_name, [o.position for o in before.occurrences])
        subject = f"{subject} {where}"
    return f"{subject}: {_reasons_text(action.reasons)}"


def _not_enforced_line(entry: NotEnforced) -> str:
    line = entry.name
    if entry.container_name is not None:
        line = f"{line} {_where(entry.container_name, entry.positions)}"
    if entry.reasons:
        line = f"{line}: {_reasons_text(entry.reasons)}"
    return line


def _credits(artist_names: Sequence[str]) -> str:
    if len(artist_names) <= 1:
        return "".join(artist_names)
    return f"{artist_names[0]} feat. {', '.join(artist_names[1:])}"


def _where(playlist_name: str, positions: Sequence[int]) -> str:
    label = "position" if len(positions) == 1 else "positions"
    return f"(in {playlist_name}, {label} {', '.join(str(p) for p in positions)})"


def _reasons_text(reasons: Sequence[Reason]) -> str:
    return "; ".join(f"{_RULE_WORDS[reason.rule]} {reason.artist_name}" for reason in reasons)
