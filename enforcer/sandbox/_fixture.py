"""The fixture format: validated on the way in, reproduced exactly on the way out.

A fixture is plain JSON (see docs/sandbox.md). Every error names the path of the bad
value and the value itself, and nothing is built until the whole fixture is valid.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._identifiers import (
    IdentifierError,
    format_timestamp,
    is_base62_id,
    is_user_id,
    local_file_uri,
    next_snapshot_id,
    parse_timestamp,
    parse_uri,
)
from ._state import (
    Album,
    Artist,
    Catalog,
    LibraryState,
    LocalFile,
    Playlist,
    PlaylistItem,
    SortedIds,
    Timeline,
    Track,
    User,
)

_OTHER_SAVED_TYPES = frozenset({"episode", "show", "audiobook", "user"})


class FixtureError(ValueError):
    """A fixture that cannot be loaded; the message names the bad value and where it is."""


def read_fixture(source: Mapping[str, Any] | Path | str) -> Any:
    """The fixture as parsed JSON, not yet validated."""
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FixtureError(f"fixture file not found: {str(path)!r}") from None
    except json.JSONDecodeError as error:
        raise FixtureError(f"fixture {str(path)!r} is not valid JSON: {error}") from None


def load_fixture(source: Mapping[str, Any] | Path | str) -> dict[str, Any]:
    """Read (from a path or a dict) and validate a fixture; returns it as a plain dict.

    Raises ``FixtureError`` naming the first bad value and where it is.
    """
    data = read_fixture(source)
    build_state(data)
    return dict(data)


def _fail(path: str, problem: str, value: object) -> FixtureError:
    shown = repr(value)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    return FixtureError(f"{path}: {problem}: {shown}")


def _object(value: object, path: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, "expected a JSON object", value)
    unknown = set(value) - allowed
    if unknown:
        key = sorted(unknown)[0]
        raise _fail(f"{path}.{key}", "unknown field", key)
    missing = required - set(value)
    if missing:
        raise _fail(path, f"missing field {sorted(missing)[0]!r} in", value)
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(path, "expected a JSON array", value)
    return value


def _string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, "expected a string", value)
    return value


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, "expected true or false", value)
    return value


def _count(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(path, "expected a non-negative integer", value)
    return value


def _base62(value: object, path: str) -> str:
    if not isinstance(value, str) or not is_base62_id(value):
        raise _fail(path, "not a Spotify ID (22 base-62 characters)", value)
    return value


def _timestamp(value: object, path: str) -> int:
    try:
        return parse_timestamp(value)
    except IdentifierError:
        raise _fail(path, "not an ISO 8601 timestamp with a time zone", value) from None


def _known(value: object, path: str, known: Mapping[str, object], what: str) -> str:
    key = _base62(value, path) if what != "user" else _string(value, path)
    if key not in known:
        raise _fail(path, f"unknown {what}", value)
    return key


def _build_catalog(raw: object) -> Catalog:
    section = _object(raw, "catalog", {"artists", "albums", "tracks"}, set())
    artists: dict[str, Artist] = {}
    for index, entry in enumerate(_list(section.get("artists", []), "catalog.artists")):
        path = f"catalog.artists[{index}]"
        entry = _object(entry, path, {"id", "name"}, {"id", "name"})
        artist_id = _base62(entry["id"], f"{path}.id")
        if artist_id in artists:
            raise _fail(f"{path}.id", "duplicate artist id", artist_id)
        artists[artist_id] = Artist(artist_id, _string(entry["name"], f"{path}.name"))
    albums: dict[str, Album] = {}
    album_fields = {"id", "name", "artist_ids", "release_date", "album_type"}
    for index, entry in enumerate(_list(section.get("albums", []), "catalog.albums")):
        path = f"catalog.albums[{index}]"
        entry = _object(entry, path, album_fields, {"id", "name", "artist_ids", "release_date"})
        album_id = _base62(entry["id"], f"{path}.id")
        if album_id in albums:
            raise _fail(f"{path}.id", "duplicate album id", album_id)
        album_type = _string(entry.get("album_type", "album"), f"{path}.album_type")
        if album_type not in {"album", "single", "compilation"}:
            raise _fail(f"{path}.album_type", "not album, single or compilation", album_type)
        albums[album_id] = Album(
            id=album_id,
            name=_string(entry["name"], f"{path}.name"),
            artist_ids=_artist_ids(entry["artist_ids"], f"{path}.artist_ids", artists),
            release_date=_release_date(entry["release_date"], f"{path}.release_date"),
            album_type=album_type,
        )
    tracks: dict[str, Track] = {}
    track_fields = {"id", "name", "artist_ids", "album_id", "duration_ms", "available", "explicit"}
    track_required = {"id", "name", "artist_ids", "album_id", "duration_ms"}
    for index, entry in enumerate(_list(section.get("tracks", []), "catalog.tracks")):
        path = f"catalog.tracks[{index}]"
        entry = _object(entry, path, track_fields, track_required)
        track_id = _base62(entry["id"], f"{path}.id")
        if track_id in tracks:
            raise _fail(f"{path}.id", "duplicate track id", track_id)
        album_id = _known(entry["album_id"], f"{path}.album_id", albums, "album")
        tracks[track_id] = Track(
            id=track_id,
            name=_string(entry["name"], f"{path}.name"),
            artist_ids=_artist_ids(entry["artist_ids"], f"{path}.artist_ids", artists),
            album_id=album_id,
            duration_ms=_count(entry["duration_ms"], f"{path}.duration_ms"),
            available=_bool(entry.get("available", True), f"{path}.available"),
            explicit=_bool(entry.get("explicit", False), f"{path}.explicit"),
        )
        albums[album_id].track_ids.append(track_id)
    return Catalog(artists=artists, albums=albums, tracks=tracks)


def _artist_ids(value: object, path: str, artists: Mapping[str, Artist]) -> tuple[str, ...]:
    ids = _list(value, path)
    if not ids:
        raise _fail(path, "needs at least one artist", value)
    return tuple(_known(item, f"{path}[{i}]", artists, "artist") for i, item in enumerate(ids))


def _release_date(value: object, path: str) -> str:
    text = _string(value, path)
    parts = text.split("-")
    if not (1 <= len(parts) <= 3 and all(part.isdigit() for part in parts) and len(parts[0]) == 4):
        raise _fail(path, "expected YYYY, YYYY-MM or YYYY-MM-DD", value)
    return text


def _user_ids(raw_users: list[Any]) -> set[str]:
    ids: set[str] = set()
    for index, entry in enumerate(raw_users):
        path = f"users[{index}]"
        if not isinstance(entry, dict) or "id" not in entry:
            raise _fail(path, "expected a user object with an id", entry)
        user_id = _string(entry["id"], f"{path}.id")
        if not is_user_id(user_id):
            raise _fail(f"{path}.id", "not a Spotify user id", user_id)
        if user_id in ids:
            raise _fail(f"{path}.id", "duplicate user id", user_id)
        ids.add(user_id)
    return ids


def _build_playlist(
    entry: object, path: str, catalog: Catalog, user_ids: set[str], owner: str | None = None
) -> Playlist:
    fields = {
        "id",
        "name",
        "owner",
        "collaborative",
        "public",
        "collaborators",
        "description",
        "snapshot_id",
        "items",
    }
    required = {"id", "name", "items"} if owner else {"id", "name", "owner", "items"}
    entry = _object(entry, path, fields, required)
    playlist_id = _base62(entry["id"], f"{path}.id")
    declared_owner = entry.get("owner", owner)
    if owner is not None and declared_owner != owner:
        raise _fail(
            f"{path}.owner",
            f"a playlist listed under {owner!r} must be owned by it",
            declared_owner,
        )
    playlist_owner = _known(declared_owner, f"{path}.owner", dict.fromkeys(user_ids), "user")
    collaborators = [
        _known(value, f"{path}.collaborators[{i}]", dict.fromkeys(user_ids), "user")
        for i, value in enumerate(_list(entry.get("collaborators", []), f"{path}.collaborators"))
    ]
    items = [
        _build_item(item, f"{path}.items[{i}]", catalog, user_ids)
        for i, item in enumerate(_list(entry["items"], f"{path}.items"))
    ]
    snapshot_id = entry.get("snapshot_id")
    if snapshot_id is None:
        snapshot_id = next_snapshot_id(playlist_id, "", 0)
    return Playlist(
        id=playlist_id,
        name=_string(entry["name"], f"{path}.name"),
        owner=playlist_owner,
        collaborative=_bool(entry.get("collaborative", False), f"{path}.collaborative"),
        public=_bool(entry.get("public", True), f"{path}.public"),
        description=_string(entry.get("description", ""), f"{path}.description"),
        collaborators=collaborators,
        items=items,
        snapshot_id=_string(snapshot_id, f"{path}.snapshot_id"),
    )


def _build_item(entry: object, path: str, catalog: Catalog, user_ids: set[str]) -> PlaylistItem:
    entry = _object(entry, path, {"uri", "local", "added_at", "added_by"}, set())
    added_at_raw = entry.get("added_at")
    added_at = None if added_at_raw is None else _timestamp(added_at_raw, f"{path}.added_at")
    added_by_raw = entry.get("added_by")
    added_by = (
        None
        if added_by_raw is None
        else _known(added_by_raw, f"{path}.added_by", dict.fromkeys(user_ids), "user")
    )
    if ("uri" in entry) == ("local" in entry):
        raise _fail(path, "needs exactly one of 'uri' and 'local'", entry)
    if "local" in entry:
        local_path = f"{path}.local"
        raw = _object(
            entry["local"], local_path, {"name", "artist", "album", "duration_ms"}, {"name"}
        )
        local = LocalFile(
            name=_string(raw["name"], f"{local_path}.name"),
            artist=_string(raw.get("artist", ""), f"{local_path}.artist"),
            album=_string(raw.get("album", ""), f"{local_path}.album"),
            duration_ms=_count(raw.get("duration_ms", 0), f"{local_path}.duration_ms"),
        )
        local_uri = local_file_uri(local.artist, local.album, local.name, local.duration_ms)
        return PlaylistItem(local_uri, None, local, added_at, added_by)
    uri_text = _string(entry["uri"], f"{path}.uri")
    try:
        uri = parse_uri(uri_text, frozenset({"track"}))
    except IdentifierError:
        raise _fail(f"{path}.uri", "not a spotify:track: URI", uri_text) from None
    if uri.id not in catalog.tracks:
        raise _fail(f"{path}.uri", "unknown track", uri_text)
    return PlaylistItem(uri_text, uri.id, None, added_at, added_by)


def _build_user(
    entry: object,
    path: str,
    catalog: Catalog,
    playlists: Mapping[str, Playlist],
) -> User:
    fields = {
        "id",
        "display_name",
        "liked_songs",
        "saved_albums",
        "followed_artists",
        "playlists",
        "other_saved",
    }
    entry = _object(entry, path, fields, {"id"})
    user_id: str = entry["id"]
    liked: list[tuple[str, int]] = []
    seen: set[str] = set()
    for i, item in enumerate(_list(entry.get("liked_songs", []), f"{path}.liked_songs")):
        item_path = f"{path}.liked_songs[{i}]"
        item = _object(item, item_path, {"track_id", "added_at"}, {"track_id", "added_at"})
        track_id = _known(item["track_id"], f"{item_path}.track_id", catalog.tracks, "track")
        if track_id in seen:
            raise _fail(f"{item_path}.track_id", "track saved twice", track_id)
        seen.add(track_id)
        liked.append((track_id, _timestamp(item["added_at"], f"{item_path}.added_at")))
    albums: list[tuple[str, int]] = []
    seen = set()
    for i, item in enumerate(_list(entry.get("saved_albums", []), f"{path}.saved_albums")):
        item_path = f"{path}.saved_albums[{i}]"
        item = _object(item, item_path, {"album_id", "added_at"}, {"album_id", "added_at"})
        album_id = _known(item["album_id"], f"{item_path}.album_id", catalog.albums, "album")
        if album_id in seen:
            raise _fail(f"{item_path}.album_id", "album saved twice", album_id)
        seen.add(album_id)
        albums.append((album_id, _timestamp(item["added_at"], f"{item_path}.added_at")))
    followed: list[str] = []
    for i, item in enumerate(_list(entry.get("followed_artists", []), f"{path}.followed_artists")):
        artist_id = _known(item, f"{path}.followed_artists[{i}]", catalog.artists, "artist")
        if artist_id in followed:
            raise _fail(f"{path}.followed_artists[{i}]", "artist followed twice", artist_id)
        followed.append(artist_id)
    playlist_ids: list[str] = []
    for i, item in enumerate(_list(entry.get("playlists", []), f"{path}.playlists")):
        playlist_id = _known(item, f"{path}.playlists[{i}]", playlists, "playlist")
        if playlist_id in playlist_ids:
            raise _fail(f"{path}.playlists[{i}]", "playlist listed twice", playlist_id)
        playlist_ids.append(playlist_id)
    other: list[tuple[str, int]] = []
    for i, item in enumerate(_list(entry.get("other_saved", []), f"{path}.other_saved")):
        item_path = f"{path}.other_saved[{i}]"
        item = _object(item, item_path, {"uri", "added_at"}, {"uri", "added_at"})
        try:
            uri = str(parse_uri(item["uri"], _OTHER_SAVED_TYPES))
        except IdentifierError:
            raise _fail(
                f"{item_path}.uri", "not an episode, show, audiobook or user URI", item["uri"]
            ) from None
        other.append((uri, _timestamp(item["added_at"], f"{item_path}.added_at")))
    return User(
        id=user_id,
        display_name=_string(entry.get("display_name", user_id), f"{path}.display_name"),
        liked_songs=Timeline.from_newest_first(liked),
        saved_albums=Timeline.from_newest_first(albums),
        followed_artists=SortedIds(followed),
        playlists=playlist_ids,
        other_saved=Timeline.from_newest_first(other),
    )


def build_state(data: object) -> LibraryState:
    """Validate a whole fixture and build the state it describes."""
    root = _object(data, "fixture", {"catalog", "playlists", "users"}, {"catalog", "users"})
    catalog = _build_catalog(root["catalog"])
    raw_users = _list(root["users"], "users")
    user_ids = _user_ids(raw_users)
    playlists: dict[str, Playlist] = {}
    for index, entry in enumerate(_list(root.get("playlists", []), "playlists")):
        playlist = _build_playlist(entry, f"playlists[{index}]", catalog, user_ids)
        if playlist.id in playlists:
            raise _fail(f"playlists[{index}].id", "duplicate playlist id", playlist.id)
        playlists[playlist.id] = playlist
    users = {
        user.id: user
        for user in (
            _build_user(entry, f"users[{i}]", catalog, playlists)
            for i, entry in enumerate(raw_users)
        )
    }
    return LibraryState(catalog=catalog, users=users, playlists=playlists)


def dump_catalog(catalog: Catalog) -> dict[str, Any]:
    return {
        "artists": [{"id": a.id, "name": a.name} for a in catalog.artists.values()],
        "albums": [
            {
                "id": a.id,
                "name": a.name,
                "artist_ids": list(a.artist_ids),
                "release_date": a.release_date,
                "album_type": a.album_type,
            }
            for a in catalog.albums.values()
        ],
        "tracks": [
            {
                "id": t.id,
                "name": t.name,
                "artist_ids": list(t.artist_ids),
                "album_id": t.album_id,
                "duration_ms": t.duration_ms,
                "available": t.available,
                "explicit": t.explicit,
            }
            for t in catalog.tracks.values()
        ],
    }


def dump_playlist(playlist: Playlist) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for item in playlist.items:
        entry: dict[str, Any]
        if item.local is not None:
            entry = {
                "local": {
                    "name": item.local.name,
                    "artist": item.local.artist,
                    "album": item.local.album,
                    "duration_ms": item.local.duration_ms,
                }
            }
        else:
            entry = {"uri": item.uri}
        entry["added_at"] = None if item.added_at is None else format_timestamp(item.added_at)
        entry["added_by"] = item.added_by
        items.append(entry)
    return {
        "id": playlist.id,
        "name": playlist.name,
        "owner": playlist.owner,
        "collaborative": playlist.collaborative,
        "public": playlist.public,
        "description": playlist.description,
        "collaborators": list(playlist.collaborators),
        "snapshot_id": playlist.snapshot_id,
        "items": items,
    }


def dump_user(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "display_name": user.display_name,
        "liked_songs": [
            {"track_id": key, "added_at": format_timestamp(at)} for key, at in user.liked_songs
        ],
        "saved_albums": [
            {"album_id": key, "added_at": format_timestamp(at)} for key, at in user.saved_albums
        ],
        "followed_artists": list(user.followed_artists),
        "playlists": list(user.playlists),
        "other_saved": [
            {"uri": key, "added_at": format_timestamp(at)} for key, at in user.other_saved
        ],
    }


def dump_state(state: LibraryState) -> dict[str, Any]:
    return {
        "catalog": dump_catalog(state.catalog),
        "playlists": [dump_playlist(p) for p in state.playlists.values()],
        "users": [dump_user(u) for u in state.users.values()],
    }


def merge_user(fixture: dict[str, Any], user_id: str, library: object) -> dict[str, Any]:
    """``fixture`` with ``user_id``'s section replaced by ``library``.

    ``library`` is a user section whose ``playlists`` may hold, besides the IDs of
    playlists it follows, whole playlist objects: those are the playlists it owns, and
    they replace every playlist it owned before.
    """
    if not is_user_id(user_id):
        raise _fail("user_id", "not a Spotify user id", user_id)
    section = dict(_object(library, "library", {*_USER_SECTION_FIELDS}, set()))
    if section.setdefault("id", user_id) != user_id:
        raise _fail("library.id", f"does not match the user {user_id!r}", section["id"])
    owned: list[dict[str, Any]] = []
    listed: list[str] = []
    for index, entry in enumerate(_list(section.get("playlists", []), "library.playlists")):
        if isinstance(entry, dict):
            playlist = dict(entry)
            if playlist.setdefault("owner", user_id) != user_id:
                raise _fail(
                    f"library.playlists[{index}].owner",
                    f"an inline playlist must be owned by {user_id!r}",
                    playlist["owner"],
                )
            owned.append(playlist)
            listed.append(playlist.get("id"))  # type: ignore[arg-type]
        else:
            listed.append(entry)
    section["playlists"] = listed
    previous = next((u for u in fixture["users"] if u["id"] == user_id), None)
    if previous is not None and "display_name" not in section:
        section["display_name"] = previous["display_name"]
    replaced_ids = {p["id"] for p in fixture["playlists"] if p["owner"] == user_id}
    new_ids = {p.get("id") for p in owned}
    vanished = replaced_ids - new_ids
    playlists = [p for p in fixture["playlists"] if p["owner"] != user_id] + owned
    users = []
    for user in fixture["users"]:
        if user["id"] == user_id:
            continue
        if vanished:
            user = {**user, "playlists": [p for p in user["playlists"] if p not in vanished]}
        users.append(user)
    users.insert(_position_of(fixture["users"], user_id), section)
    return {"catalog": fixture["catalog"], "playlists": playlists, "users": users}


def merge_generated_user(
    fixture: dict[str, Any], user_id: str, generated: dict[str, Any]
) -> dict[str, Any]:
    """``fixture`` with ``user_id``'s library replaced by the one in ``generated`` (a
    ``generate_library`` fixture for ``user_id``).

    The generated catalog is added to the fixture's; the playlists the user follows come
    with their owner, ``curator``, who is created or given them besides its own.
    """
    catalog = {kind: list(rows) for kind, rows in fixture["catalog"].items()}
    for kind, rows in generated["catalog"].items():
        known = {row["id"] for row in catalog.setdefault(kind, [])}
        catalog[kind].extend(row for row in rows if row["id"] not in known)
    sections = {user["id"]: user for user in generated["users"]}
    section = dict(sections[user_id])
    owned = {p["id"]: p for p in generated["playlists"] if p["owner"] == user_id}
    section["playlists"] = [owned.get(pid, pid) for pid in section["playlists"]]
    curated = [p for p in generated["playlists"] if p["owner"] != user_id]
    users = list(fixture["users"])
    for owner_id in {p["owner"] for p in curated}:
        listed = [p["id"] for p in curated if p["owner"] == owner_id]
        position = next((i for i, u in enumerate(users) if u["id"] == owner_id), None)
        if position is None:
            users.append({**sections[owner_id], "playlists": listed})
        else:
            owner = users[position]
            users[position] = {**owner, "playlists": owner["playlists"] + listed}
    merged = {"catalog": catalog, "playlists": fixture["playlists"] + curated, "users": users}
    return merge_user(merged, user_id, section)


_USER_SECTION_FIELDS = (
    "id",
    "display_name",
    "liked_songs",
    "saved_albums",
    "followed_artists",
    "playlists",
    "other_saved",
)


def _position_of(users: list[dict[str, Any]], user_id: str) -> int:
    for index, user in enumerate(users):
        if user["id"] == user_id:
            return index
    return len(users)


def dump_user_library(state: LibraryState, user_id: str) -> dict[str, Any]:
    """A user's section with the playlists it owns inline (what ``merge_user`` takes)."""
    section = dump_user(state.users[user_id])
    section["playlists"] = [
        dump_playlist(state.playlists[pid]) if state.playlists[pid].owner == user_id else pid
        for pid in section["playlists"]
    ]
    return section
