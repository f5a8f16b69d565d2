"""The planner: a library, a blocklist, a protect list and options make a plan.

Pure: no I/O, no clock, no randomness. The same inputs always give the same plan,
item for item and ID for ID.

What matches
------------
- A **track** matches by the artists credited on it, by Spotify artist ID (a blocked
  artist renamed since it was blocked still matches). ``primary``: only the first
  credited artist counts (``PRIMARY_ARTIST``); ``featured`` (the default): any credited
  artist (``PRIMARY_ARTIST`` for the first, ``FEATURED_ARTIST`` for the others);
  ``mentions``: as ``featured``, and also a blocked artist *named* in the title after
  "feat." / "ft." / "featuring" / "with" / "x" (``TITLE_MENTION``), e.g.
  "Song (feat. Blocked)", "Song ft. A & Blocked", "Song (with Blocked)",
  "Other x Blocked". A mention compares whole names, case-insensitively, in a list
  separated by "," "&" "and" or "x": "Blocked" is not found in "Blockedness" nor in
  "Blocked Remix". A mention of an artist who is also credited adds no second reason:
  the credit already says it. Names of several blocked artists may be equal; a
  mention then names each of them, since the title cannot tell them apart.
- A **local file** has no artist ID: it matches by its artist *name* (whitespace- and
  case-insensitive) under the same policy. Spotify cannot remove local files, so a
  match is listed as not enforced (``LOCAL_FILE``), never as an action.
- An **episode** has no artists and never matches.
- A **saved album** is removed when its own artists include a blocked artist
  (``primary``: its first artist) — rule ``ALBUM_ARTIST``. An album on which a blocked
  artist is only a *guest* on one track is kept: its artists do not include them.
  That guest track, if liked or in a playlist, is removed on its own.
- A **followed artist** that is blocked is unfollowed, whatever the policy.

Where
-----
Liked songs; the items of the playlists ``enforcer.library.playlist_scope`` lets us
edit (owned ones; collaborative ones with ``include_collaborative``); saved albums;
followed artists. A playlist that was read but may not be edited lists its blocked
items as not enforced, with why; a playlist that was not read (``items`` None) is not
in the plan at all. For one playlist entry the first that applies wins:

1. the playlist is not to be edited: ``NOT_OWNED`` or ``COLLABORATIVE`` (a fact about
   the playlist), then ``PROTECTED_PLAYLIST`` (the person's choice) — only its
   blocked items are listed; its unavailable entries are not, since nothing would be
   done with them anyway;
2. ``UNAVAILABLE``: Spotify sent no content, so nothing can be checked (one entry
   per position, no reasons);
3. no match: nothing to say;
4. ``LOCAL_FILE``, then ``PROTECTED_TRACK``;
5. otherwise one action per (playlist, URI), holding every occurrence of the URI
   (one removal takes them all).

Order and identity
------------------
Actions come liked songs first (library order), then playlists in ``/me/playlists``
order (items by first position), then albums, then artists; not-enforced entries in
the same walk.

The plan ID is the first 16 hex characters (64 bits) of a SHA-256 over: the hashing
scheme's version, the account, the options, the blocklist (sorted by artist ID), the
protect list (sorted), a SHA-256 fingerprint of the whole library snapshot, the
actions and the not-enforced entries. The library fingerprint is deliberate: a plan
ID names "this library, as it was read, matched against this blocklist and policy",
so any change to the library — even one that leaves the actions as they were — gives
a new plan. That is what the ledger and the enforcement workflow (whose ID embeds the
plan ID) need: planning again after the library changed never silently attaches to a
batch made from an older reading.

A section at a time
-------------------
``make_plan`` takes the library whole. ``SectionPlanner`` gives the same actions and
entries fed a slice at a time in plan order (one matching, ``_Walk``, for both), and
``LibraryFingerprint`` and ``PlanDigest`` give the same fingerprint and ID from a running
hash, so a library larger than memory is planned with the ID ``make_plan`` would give it.
The matcher's cache of matched tracks is bounded (cleared when full) for the same reason.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter

from enforcer.library import playlist_scope
from enforcer.models import (
    BlockedArtist,
    EntityType,
    FollowedArtistBefore,
    LibrarySnapshot,
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
    ProtectList,
    Reason,
    SavedAlbumBefore,
    ScannedPlaylist,
)
from enforcer.spotify.models import (
    Album,
    Artist,
    Playlist,
    PlaylistItem,
    SavedAlbum,
    SavedTrack,
    Track,
)

__all__ = [
    "FINGERPRINT_SECTIONS",
    "UNAVAILABLE_NAME",
    "LibraryFingerprint",
    "PlanDigest",
    "PlanInputError",
    "PlanSection",
    "SectionPlanner",
    "make_plan",
]

PLAN_ID_SCHEME = "plan-id/1"
PLAN_ID_LENGTH = 16
_TRACK_CACHE_LIMIT = 4_096
UNAVAILABLE_NAME = "(unavailable)"
"""The name of a playlist entry Spotify no longer sends any content for."""


class PlanInputError(ValueError):
    """The blocklist cannot be planned with; the message names the bad value."""


def make_plan(
    library: LibrarySnapshot,
    blocklist: Sequence[BlockedArtist],
    protect: ProtectList,
    options: PlanOptions,
) -> Plan:
    """What enforcing ``blocklist`` on ``library`` would change, why, and what it would leave.

    Raises ``PlanInputError`` for an empty blocklist or one artist ID given two names.
    The whole library in memory: ``SectionPlanner`` plans the same a section at a time.
    """
    planner = SectionPlanner(library.account_id, blocklist, protect, options)
    sections = [
        planner.liked_songs(library.liked_songs),
        *(planner.playlist(scanned) for scanned in library.playlists),
        planner.saved_albums(library.saved_albums),
        planner.followed_artists(library.followed_artists),
    ]
    actions = tuple(action for section in sections for action in section.actions)
    not_enforced = tuple(entry for section in sections for entry in section.not_enforced)
    digest = PlanDigest(
        library.account_id, planner.blocklist, protect, options, _library_fingerprint(library)
    )
    digest.add_actions(actions)
    digest.add_not_enforced(not_enforced)
    return Plan(
        id=digest.plan_id(),
        account_id=library.account_id,
        options=options,
        blocklist=planner.blocklist,
        actions=actions,
        not_enforced=not_enforced,
        counts=planner.counts(),
    )


@dataclass(frozen=True)
class PlanSection:
    """What one section (or one slice of a section) of the library adds to the plan."""

    actions: tuple[PlannedAction, ...]
    not_enforced: tuple[NotEnforced, ...]


class SectionPlanner:
    """The planner a section at a time, for a library too large to hold at once.

    Feed it in plan order: liked songs (in slices, in library order), each playlist
    whole in ``/me/playlists`` order, saved albums, followed artists (both in slices);
    a section fed out of that order raises ``ValueError``. Each call returns that
    slice's actions and not-enforced entries; concatenated, they are ``make_plan``'s,
    item for item. What it keeps between calls is bounded by the playlists and the
    distinct liked songs (a repeat in Liked Songs adds nothing), not by what it returns.
    """

    def __init__(
        self,
        account_id: str,
        blocklist: Sequence[BlockedArtist],
        protect: ProtectList,
        options: PlanOptions,
    ) -> None:
        self.blocklist = _checked_blocklist(blocklist)
        self._walk = _Walk(account_id, _Matcher(self.blocklist, options.policy), protect, options)
        self._stage = 0
        self._scanned: Counter[EntityType] = Counter()
        self._actions: Counter[EntityType] = Counter()
        self._not_enforced: Counter[NotEnforcedWhy] = Counter()
        self._playlists_read = 0
        self._touched: set[str] = set()

    def liked_songs(self, songs: Iterable[SavedTrack]) -> PlanSection:
        self._enter(0, "liked songs")
        for saved in songs:
            self._scanned[EntityType.LIKED_SONG] += 1
            self._walk.liked_song(saved)
        return self._taken()

    def playlist(self, scanned: ScannedPlaylist) -> PlanSection:
        self._enter(1, "a playlist")
        if scanned.items is not None:
            self._playlists_read += 1
            self._scanned[EntityType.PLAYLIST_ITEM] += len(scanned.items)
        self._walk.playlist(scanned)
        return self._taken()

    def saved_albums(self, albums: Iterable[SavedAlbum]) -> PlanSection:
        self._enter(2, "saved albums")
        for saved_album in albums:
            self._scanned[EntityType.SAVED_ALBUM] += 1
            self._walk.saved_album(saved_album.album, saved_album.added_at)
        return self._taken()

    def followed_artists(self, artists: Iterable[Artist]) -> PlanSection:
        self._enter(3, "followed artists")
        for artist in artists:
            self._scanned[EntityType.FOLLOWED_ARTIST] += 1
            self._walk.followed_artist(artist)
        return self._taken()

    def counts(self) -> PlanCounts:
        """The counts of everything fed so far."""
        return PlanCounts(
            scanned={entity_type: self._scanned[entity_type] for entity_type in EntityType},
            actions={entity_type: self._actions[entity_type] for entity_type in EntityType},
            not_enforced={why: self._not_enforced[why] for why in NotEnforcedWhy},
            playlists_read=self._playlists_read,
            playlists_touched=len(self._touched),
        )

    def _enter(self, stage: int, what: str) -> None:
        if stage < self._stage:
            raise ValueError(f"{what} fed after a later section: the plan's order is fixed")
        self._stage = stage

    def _taken(self) -> PlanSection:
        actions, not_enforced = tuple(self._walk.actions), tuple(self._walk.not_enforced)
        self._walk.actions.clear()
        self._walk.not_enforced.clear()
        for action in actions:
            self._actions[action.entity_type] += 1
            if action.container_id is not None:
                self._touched.add(action.container_id)
        for entry in not_enforced:
            self._not_enforced[entry.why] += 1
        return PlanSection(actions=actions, not_enforced=not_enforced)


# The blocklist ------------------------------------------------------------------------


def _checked_blocklist(blocklist: Sequence[BlockedArtist]) -> tuple[BlockedArtist, ...]:
    """Sorted by artist ID, exact repeats dropped; an ID with two names is refused."""
    by_id: dict[str, BlockedArtist] = {}
    for artist in blocklist:
        if not artist.artist_id.strip():
            raise PlanInputError(f"a blocked artist has an empty artist ID: {artist!r}")
        known = by_id.setdefault(artist.artist_id, artist)
        if known.name != artist.name:
            raise PlanInputError(
                f"blocked artist {artist.artist_id!r} is listed under two names: "
                f"{known.name!r} and {artist.name!r}"
            )
    if not by_id:
        raise PlanInputError("the blocklist is empty: there is nothing to plan")
    return tuple(by_id[artist_id] for artist_id in sorted(by_id))


def _normal_name(name: str) -> str:
    return " ".join(name.split()).casefold()


# Words that start a list of credits in a title, and that separate names inside one.
_CREDIT_MARKER = re.compile(
    r"(?:^|(?<=[\s(\[]))(?:feat\.|ft\.|(?:featuring|feat|ft|with|x)\b)\s*"
    r"(?P<credits>[^()\[\]]*)",
    re.IGNORECASE,
)
_CREDITS_END = re.compile(r"\s[-\u2013\u2014]\s")
_NAME_SEPARATOR = r"(?:,|&|\b(?:and|x|with|featuring|feat|ft)\b\.?)"


class _Matcher:
    """Finds the reasons a track or an album matches, with the blocklist indexed once."""

    def __init__(self, blocked: Sequence[BlockedArtist], policy: Policy) -> None:
        self._policy = policy
        self._by_id = {artist.artist_id: artist for artist in blocked}
        by_name: dict[str, list[BlockedArtist]] = {}
        for artist in blocked:
            key = _normal_name(artist.name)
            if key:  # a blocked artist with no known name can only match by ID
                by_name.setdefault(key, []).append(artist)
        self._by_name = {key: tuple(artists) for key, artists in by_name.items()}
        self._mention_pattern, self._mention_groups = _mention_pattern(self._by_name)
        self._track_cache: dict[tuple[str, bool], tuple[Reason, ...]] = {}

    def track_reasons(self, track: Track) -> tuple[Reason, ...]:
        # The same track appears in Liked Songs and many playlists: match it once.
        key = (track.uri, track.is_local)
        cached = self._track_cache.get(key)
        if cached is None:
            if len(self._track_cache) >= _TRACK_CACHE_LIMIT:
                # Bounded, so that a large library's planning does not grow with it;
                # forgetting only costs matching a track again.
                self._track_cache.clear()
            cached = self._track_cache[key] = self._match_track(track)
        return cached

    def album_reasons(self, album: Album) -> tuple[Reason, ...]:
        artists = album.artists[:1] if self._policy is Policy.PRIMARY else album.artists
        reasons: dict[str, Reason] = {}
        for artist in artists:
            blocked = self._by_id.get(artist.id) if artist.id is not None else None
            if blocked is not None and blocked.artist_id not in reasons:
                reasons[blocked.artist_id] = _reason(blocked, MatchRule.ALBUM_ARTIST)
        return tuple(reasons.values())

    def followed_reason(self, artist: Artist) -> Reason | None:
        blocked = self._by_id.get(artist.id)
        return None if blocked is None else _reason(blocked, MatchRule.FOLLOWED_ARTIST)

    def _match_track(self, track: Track) -> tuple[Reason, ...]:
        reasons: dict[str, Reason] = {}
        credits = track.artists[:1] if self._policy is Policy.PRIMARY else track.artists
        for index, credit in enumerate(credits):
            rule = MatchRule.PRIMARY_ARTIST if index == 0 else MatchRule.FEATURED_ARTIST
            if track.is_local:
                candidates = self._by_name.get(_normal_name(credit.name), ())
            else:
                found = self._by_id.get(credit.id) if credit.id is not None else None
                candidates = () if found is None else (found,)
            for blocked in candidates:
                reasons.setdefault(blocked.artist_id, _reason(blocked, rule))
        if self._policy is Policy.MENTIONS:
            for blocked in self._mentioned(track.name):
                reasons.setdefault(blocked.artist_id, _reason(blocked, MatchRule.TITLE_MENTION))
        return tuple(reasons.values())

    def _mentioned(self, title: str) -> Iterator[BlockedArtist]:
        if self._mention_pattern is None:
            return
        for marker in _CREDIT_MARKER.finditer(title):
            credits = _CREDITS_END.split(marker.group("credits"), maxsplit=1)[0].strip()
            for name in self._mention_pattern.finditer(credits):
                if name.lastgroup is not None:
                    yield from self._by_name[self._mention_groups[name.lastgroup]]


def _mention_pattern(
    by_name: dict[str, tuple[BlockedArtist, ...]],
) -> tuple[re.Pattern[str] | None, dict[str, str]]:
    """One regex for every blocked name, compiled once per plan; group -> name key."""
    if not by_name:
        return None, {}
    groups: dict[str, str] = {}
    alternatives: list[str] = []
    # Longest first, so that "Blocked Band" is tried before "Blocked".
    for index, key in enumerate(sorted(by_name, key=lambda k: (-len(k), k))):
        group = f"n{index}"
        groups[group] = key
        words = r"\s+".join(re.escape(word) for word in key.split())
        alternatives.append(f"(?P<{group}>{words})")
    pattern = (
        rf"(?:^|{_NAME_SEPARATOR})\s*(?:{'|'.join(alternatives)})"
        rf"\s*(?=$|{_NAME_SEPARATOR})"
    )
    return re.compile(pattern, re.IGNORECASE), groups


def _reason(blocked: BlockedArtist, rule: MatchRule) -> Reason:
    return Reason(artist_id=blocked.artist_id, artist_name=blocked.name, rule=rule)


# The walk over the library -----------------------------------------------------------


@dataclass
class _Walk:
    account_id: str
    matcher: _Matcher
    protect: ProtectList
    options: PlanOptions

    def __post_init__(self) -> None:
        self.actions: list[PlannedAction] = []
        self.not_enforced: list[NotEnforced] = []
        self._liked: set[str] = set()

    def liked_song(self, saved: SavedTrack) -> None:
        track = saved.track
        if track.uri in self._liked:  # Liked Songs holds a track once; a repeat adds nothing
            return
        self._liked.add(track.uri)
        reasons = self.matcher.track_reasons(track)
        if not reasons:
            return
        why = self._track_held(track)
        if why is not None:
            self.not_enforced.append(
                NotEnforced(
                    why=why,
                    entity_type=EntityType.LIKED_SONG,
                    name=track.name,
                    uri=track.uri,
                    reasons=reasons,
                )
            )
            return
        self.actions.append(
            PlannedAction(
                entity_type=EntityType.LIKED_SONG,
                entity_id=_track_id(track),
                uri=track.uri,
                name=track.name,
                artist_names=tuple(artist.name for artist in track.artists),
                reasons=reasons,
                before=LikedSongBefore(added_at=saved.added_at),
            )
        )

    def playlist(self, scanned: ScannedPlaylist) -> None:
        if scanned.items is None:
            return
        playlist = scanned.playlist
        held = playlist_scope(playlist, self.account_id, self.options)
        if held is None and playlist.id in self.protect.playlist_ids:
            held = NotEnforcedWhy.PROTECTED_PLAYLIST
        # Keyed by URI, or by position for an unavailable entry (it has no URI), so that
        # the entries come out in the order of their first position.
        groups: dict[str | int, tuple[Track | None, list[PlaylistItem]]] = {}
        for entry in sorted(scanned.items, key=lambda item: item.position):
            content = entry.item
            if content is None:
                groups[entry.position] = (None, [entry])
            elif isinstance(content, Track):
                groups.setdefault(content.uri, (content, []))[1].append(entry)
        for track, entries in groups.values():
            if track is not None:
                self._playlist_track(scanned, track, entries, held)
            elif held is None:
                self.not_enforced.append(
                    NotEnforced(
                        why=NotEnforcedWhy.UNAVAILABLE,
                        entity_type=EntityType.PLAYLIST_ITEM,
                        name=UNAVAILABLE_NAME,
                        container_id=playlist.id,
                        container_name=playlist.name,
                        positions=(entries[0].position,),
                    )
                )

    def _playlist_track(
        self,
        scanned: ScannedPlaylist,
        track: Track,
        entries: list[PlaylistItem],
        held: NotEnforcedWhy | None,
    ) -> None:
        playlist = scanned.playlist
        reasons = self.matcher.track_reasons(track)
        if not reasons:
            return
        why = held or self._track_held(track, local=entries[0].is_local)
        if why is not None:
            self.not_enforced.append(
                NotEnforced(
                    why=why,
                    entity_type=EntityType.PLAYLIST_ITEM,
                    name=track.name,
                    uri=track.uri,
                    container_id=playlist.id,
                    container_name=playlist.name,
                    positions=tuple(entry.position for entry in entries),
                    reasons=reasons,
                )
            )
            return
        self.actions.append(
            PlannedAction(
                entity_type=EntityType.PLAYLIST_ITEM,
                entity_id=_track_id(track),
                container_id=playlist.id,
                uri=track.uri,
                name=track.name,
                artist_names=tuple(artist.name for artist in track.artists),
                reasons=reasons,
                before=PlaylistItemBefore(
                    playlist_id=playlist.id,
                    playlist_name=playlist.name,
                    snapshot_id=playlist.snapshot_id,
                    occurrences=tuple(
                        Occurrence(
                            position=entry.position,
                            added_at=entry.added_at,
                            added_by=entry.added_by,
                        )
                        for entry in entries
                    ),
                ),
            )
        )

    def saved_album(self, album: Album, added_at: datetime) -> None:
        reasons = self.matcher.album_reasons(album)
        if reasons:
            self.actions.append(
                PlannedAction(
                    entity_type=EntityType.SAVED_ALBUM,
                    entity_id=album.id,
                    uri=album.uri,
                    name=album.name,
                    artist_names=tuple(artist.name for artist in album.artists),
                    reasons=reasons,
                    before=SavedAlbumBefore(added_at=added_at),
                )
            )

    def followed_artist(self, artist: Artist) -> None:
        reason = self.matcher.followed_reason(artist)
        if reason is not None:
            self.actions.append(
                PlannedAction(
                    entity_type=EntityType.FOLLOWED_ARTIST,
                    entity_id=artist.id,
                    uri=artist.uri,
                    name=artist.name,
                    artist_names=(artist.name,),
                    reasons=(reason,),
                    before=FollowedArtistBefore(),
                )
            )

    def _track_held(self, track: Track, *, local: bool = False) -> NotEnforcedWhy | None:
        if track.is_local or local:
            return NotEnforcedWhy.LOCAL_FILE
        if _track_id(track) in self.protect.track_ids:
            return NotEnforcedWhy.PROTECTED_TRACK
        return None


def _track_id(track: Track) -> str:
    # Spotify sends an ID with every track that is not a local file; the URI carries it too.
    return track.id if track.id is not None else track.uri.rsplit(":", 1)[-1]


# Identity ----------------------------------------------------------------------------


class PlanDigest:
    """The plan ID, computed as the plan is written: the header (with the library's
    fingerprint) first, then every action in plan order, then every not-enforced entry;
    an action added after a not-enforced entry raises ``ValueError``."""

    def __init__(
        self,
        account_id: str,
        blocklist: tuple[BlockedArtist, ...],
        protect: ProtectList,
        options: PlanOptions,
        library_fingerprint: str,
    ) -> None:
        # Models serialise their fields in declaration order and hold no sets or dicts,
        # so their JSON is canonical as it is; the protect list's sets are sorted by hand.
        header = {
            "scheme": PLAN_ID_SCHEME,
            "account_id": account_id,
            "options": options.model_dump(mode="json"),
            "blocklist": [artist.model_dump(mode="json") for artist in blocklist],
            "protect": {
                "track_ids": sorted(protect.track_ids),
                "playlist_ids": sorted(protect.playlist_ids),
            },
            "library": library_fingerprint,
        }
        self._digest = hashlib.sha256()
        self._digest.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
        self._part = 0
        self._entries = 0
        self._open(1)

    def add_actions(self, actions: Iterable[PlannedAction]) -> None:
        if self._part != 1:
            raise ValueError("actions come before every not-enforced entry")
        self._add(actions)

    def add_not_enforced(self, entries: Iterable[NotEnforced]) -> None:
        self._open(2)
        self._add(entries)

    def plan_id(self) -> str:
        self._open(2)
        final = self._digest.copy()
        final.update(b"]")
        return final.hexdigest()[:PLAN_ID_LENGTH]

    def _open(self, part: int) -> None:
        if self._part < part:
            if self._part:
                self._digest.update(b"]")
            self._digest.update(b"\n[")
            self._part, self._entries = part, 0

    def _add(self, entries: Iterable[PlannedAction | NotEnforced]) -> None:
        for entry in entries:
            if self._entries:
                self._digest.update(b",")
            self._digest.update(entry.model_dump_json().encode())
            self._entries += 1


_FINGERPRINT_CHUNK = 1_000
_SECTIONS: tuple[tuple[str, TypeAdapter[Any]], ...] = (
    ("liked_songs", TypeAdapter(tuple[SavedTrack, ...])),
    ("saved_albums", TypeAdapter(tuple[SavedAlbum, ...])),
    ("followed_artists", TypeAdapter(tuple[Artist, ...])),
    ("playlists", TypeAdapter(tuple[ScannedPlaylist, ...])),
)
FINGERPRINT_SECTIONS = tuple(section for section, _ in _SECTIONS)
"""The library's sections in the order the fingerprint takes them."""


def _library_fingerprint(library: LibrarySnapshot) -> str:
    """SHA-256 of the whole snapshot, serialised a chunk at a time: a 50,000-song library
    never sits in memory as one JSON document."""
    digest = hashlib.sha256(json.dumps(library.account_id).encode())
    for section, adapter in _SECTIONS:
        entries: tuple[Any, ...] = getattr(library, section)
        digest.update(f"\n{section}:{len(entries)}".encode())
        for start in range(0, len(entries), _FINGERPRINT_CHUNK):
            digest.update(adapter.dump_json(entries[start : start + _FINGERPRINT_CHUNK]))
    return digest.hexdigest()


class LibraryFingerprint:
    """``make_plan``'s library fingerprint, byte for byte, fed an entry at a time.

    Sections come in ``FINGERPRINT_SECTIONS`` order, each opened with its entry count;
    a playlist is opened (saying whether it was read), given its entries in slices, and
    closed. The bytes hashed are those of the whole snapshot's JSON cut in chunks of
    1,000 entries, so nothing but the running hash is kept."""

    def __init__(self, account_id: str) -> None:
        self._digest = hashlib.sha256(json.dumps(account_id).encode())
        self._in_chunk = 0
        self._playlist_open = False
        self._items_open = False
        self._items = 0

    def section(self, name: str, count: int) -> None:
        self._close_chunk()
        self._digest.update(f"\n{name}:{count}".encode())

    def entry(self, entry: BaseModel) -> None:
        """A liked song, saved album or followed artist of the open section."""
        self._begin_entry()
        self._digest.update(entry.model_dump_json().encode())
        self._end_entry()

    def begin_playlist(self, playlist: Playlist, *, read: bool) -> None:
        self._begin_entry()
        self._digest.update(b'{"playlist":')
        self._digest.update(playlist.model_dump_json().encode())
        self._digest.update(b',"items":')
        self._digest.update(b"[" if read else b"null")
        self._playlist_open, self._items_open, self._items = True, read, 0

    def playlist_items(self, items: Iterable[PlaylistItem]) -> None:
        if not self._items_open:
            raise ValueError("entries given to a playlist that is not open, or was not read")
        for item in items:
            if self._items:
                self._digest.update(b",")
            self._digest.update(item.model_dump_json().encode())
            self._items += 1

    def end_playlist(self) -> None:
        if not self._playlist_open:
            raise ValueError("no playlist is open")
        self._digest.update(b"]}" if self._items_open else b"}")
        self._playlist_open = self._items_open = False
        self._end_entry()

    def hexdigest(self) -> str:
        self._close_chunk()
        return self._digest.hexdigest()

    def _begin_entry(self) -> None:
        if self._playlist_open:
            raise ValueError("the open playlist must be ended first")
        self._digest.update(b"," if self._in_chunk else b"[")

    def _end_entry(self) -> None:
        self._in_chunk += 1
        if self._in_chunk == _FINGERPRINT_CHUNK:
            self._close_chunk()

    def _close_chunk(self) -> None:
        if self._in_chunk:
            self._digest.update(b"]")
            self._in_chunk = 0
