"""What the Web UI tells of a plan, a batch and a rollback, in Markdown.

Temporal's Web UI shows a workflow's summary (one line, in the list of workflows too), its
details (fixed at start) and its current details (set by the workflow as it runs), each
rendered as Markdown. This module writes them from what the ledger and the workflow's
state already hold; it knows nothing of Temporal.

Invariants:
- Built from a plan's header (its counts, blocklist and options) or a batch's counters,
  never from its items: the text has the same size for ten items or a million.
- A summary is one line of at most ``SUMMARY_LIMIT`` bytes; details stay under
  ``DETAILS_LIMIT`` bytes whatever the blocklist's size (Temporal's limits, 200 bytes and
  20 KB, leave room for the payload's encryption).
- Names that come from Spotify (artists) are escaped: they show as written, never as
  Markdown, and never as a link.
- No token, no secret: an account ID, plan and batch IDs and counts only.
- Links are to pages of the Web UI itself (paths from its root), so they hold wherever
  the UI is served.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import quote, urlencode

from enforcer.models import (
    BlockedArtist,
    EntityType,
    NotEnforcedWhy,
    PlanCounts,
    PlanOptions,
    Policy,
)

SUMMARY_LIMIT: Final = 160
DETAILS_LIMIT: Final = 16_000
BLOCKED_ARTISTS_SHOWN: Final = 40
"""Blocked artists named in a plan's details; the rest are counted."""

KIND_NAMES: Final[Mapping[EntityType, str]] = {
    EntityType.LIKED_SONG: "liked songs",
    EntityType.PLAYLIST_ITEM: "playlist entries",
    EntityType.SAVED_ALBUM: "saved albums",
    EntityType.FOLLOWED_ARTIST: "followed artists",
}
"""What a person calls each kind of item."""

POLICY_WORDS: Final[Mapping[Policy, str]] = {
    Policy.PRIMARY: "a song goes when a blocked artist is its primary (first) artist",
    Policy.FEATURED: "a song goes when a blocked artist is credited anywhere on it",
    Policy.MENTIONS: (
        "a song goes when a blocked artist is credited anywhere on it, or named in its "
        'title after "feat.", "ft.", "with" or "x"'
    ),
}
NOT_ENFORCED_NAMES: Final[Mapping[NotEnforcedWhy, str]] = {
    NotEnforcedWhy.LOCAL_FILE: "local files",
    NotEnforcedWhy.UNAVAILABLE: "unavailable entries",
    NotEnforcedWhy.PROTECTED_TRACK: "protected tracks",
    NotEnforcedWhy.PROTECTED_PLAYLIST: "entries of protected playlists",
    NotEnforcedWhy.COLLABORATIVE: "entries of others' collaborative playlists",
    NotEnforcedWhy.NOT_OWNED: "entries of others' playlists",
}

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~])")


def escape(text: str) -> str:
    """``text`` shown as written, not read as Markdown, on one line."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def kind_name(entity_type: EntityType) -> str:
    return KIND_NAMES.get(entity_type, entity_type.value)


def workflow_page(namespace: str, workflow_id: str) -> str:
    """The Web UI's page of a workflow, as a path from the UI's root."""
    return f"/namespaces/{quote(namespace, safe='')}/workflows/{quote(workflow_id, safe='')}"


def workflow_link(namespace: str, workflow_id: str) -> str:
    """``workflow_id``, as code, linked to its page."""
    return f"[{code(workflow_id)}]({workflow_page(namespace, workflow_id)})"


def code(text: str) -> str:
    """``text`` as inline code (IDs: copied as they are), escaped if it cannot be."""
    return f"`{text}`" if "`" not in text and "\n" not in text else escape(text)


def rollbacks_link(namespace: str, batch_id: str) -> str:
    """A link to the Web UI's list of every rollback of ``batch_id``, whole or in part."""
    query = f'WorkflowId STARTS_WITH "rollback/{batch_id}"'
    path = f"/namespaces/{quote(namespace, safe='')}/workflows?{urlencode({'query': query})}"
    return f"[its rollbacks]({path})"


def counts_line(counts: Mapping[EntityType, int]) -> str:
    """``liked songs 3, playlist entries 2`` in the kinds' order; kinds of none left out."""
    return ", ".join(f"{kind_name(kind)} {counts[kind]}" for kind in EntityType if counts.get(kind))


def one_line(text: str) -> str:
    """``text`` cut to a summary's size, on a character boundary."""
    encoded = text.encode()
    if len(encoded) <= SUMMARY_LIMIT:
        return text
    return encoded[: SUMMARY_LIMIT - 3].decode(errors="ignore").rstrip() + "..."


# A plan, as its enforcement shows it ---------------------------------------------------


def enforcement_summary(account_id: str, counts: PlanCounts) -> str:
    changes = sum(counts.actions.values())
    return one_line(f"Remove {changes} items for {account_id}: {counts_line(counts.actions)}")


def enforcement_details(
    *,
    namespace: str,
    batch_id: str,
    plan_id: str,
    account_id: str,
    options: PlanOptions,
    counts: PlanCounts,
    blocklist: Sequence[BlockedArtist],
) -> str:
    """The plan a batch enforces: what it removes per kind, the blocked artists, the
    policy, what it leaves alone, and where its rollbacks will be."""
    lines = [
        f"### Plan {code(plan_id)} for account {code(account_id)}",
        "",
        f"**Removes {sum(counts.actions.values())} items:**",
        "",
    ]
    for kind in EntityType:
        planned = counts.actions.get(kind, 0)
        if not planned:
            continue
        line = f"- {kind_name(kind)}: {planned} of {counts.scanned.get(kind, 0)} read"
        if kind is EntityType.PLAYLIST_ITEM:
            line += f", in {counts.playlists_touched} of the {counts.playlists_read} playlists read"
        lines.append(line)
    lines += ["", _blocked_artists(blocklist), "", f"**Policy:** {options.policy.value}: "]
    lines[-1] += POLICY_WORDS[options.policy] + (
        "; others' collaborative playlists edited too."
        if options.include_collaborative
        else "; others' collaborative playlists left alone."
    )
    left = ", ".join(
        f"{count} {NOT_ENFORCED_NAMES.get(why, why.value)}"
        for why, count in sorted(counts.not_enforced.items())
        if count
    )
    if left:
        lines += ["", f"**Left as they are:** {left} ({code(f'starter.py show-plan {plan_id}')})."]
    lines += [
        "",
        f"**Undo:** {code(f'starter.py rollback {batch_id}')} puts it all back, as "
        f"{workflow_link(namespace, f'rollback/{batch_id}')}; "
        f"{rollbacks_link(namespace, batch_id)} list every undo, whole or in part.",
    ]
    return "\n".join(lines)


def _blocked_artists(blocklist: Sequence[BlockedArtist]) -> str:
    names = sorted((artist.name for artist in blocklist), key=str.casefold)
    shown = ", ".join(escape(name) for name in names[:BLOCKED_ARTISTS_SHOWN])
    more = len(names) - BLOCKED_ARTISTS_SHOWN
    if more > 0:
        shown += f" and {more} more (`starter.py blocklist list`)"
    return f"**Blocked artists ({len(names)}):** {shown or 'none'}"


# A rollback --------------------------------------------------------------------------


def rollback_summary(account_id: str, batch_id: str, counts: Mapping[EntityType, int]) -> str:
    return one_line(
        f"Put back {sum(counts.values())} items of {batch_id} for {account_id}: "
        f"{counts_line(counts)}"
    )


def rollback_details(
    *,
    namespace: str,
    batch_id: str,
    account_id: str,
    counts: Mapping[EntityType, int],
    chosen: int | None = None,
) -> str:
    """What a rollback puts back, per kind, and a link to the batch it undoes."""
    what = "the whole batch" if chosen is None else f"{chosen} chosen items of the batch"
    lines = [
        f"### Undoes {what} {workflow_link(namespace, batch_id)}",
        "",
        f"Account {code(account_id)}. **Puts back {sum(counts.values())} items:**",
        "",
        *(f"- {kind_name(kind)}: {counts[kind]}" for kind in EntityType if counts.get(kind)),
    ]
    return "\n".join(lines)
