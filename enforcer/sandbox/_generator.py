"""Deterministic synthetic libraries, from a demo-sized one to 50,000 liked songs."""

from __future__ import annotations

import inspect
import random
from collections.abc import Mapping
from typing import Any

from ._identifiers import base62_from_bytes, format_timestamp

_ADJECTIVES = (
    "Velvet",
    "Electric",
    "Silent",
    "Golden",
    "Broken",
    "Midnight",
    "Neon",
    "Paper",
    "Crystal",
    "Wild",
    "Hollow",
    "Scarlet",
    "Lunar",
    "Quiet",
    "Burning",
    "Frozen",
)
_NOUNS = (
    "Owls",
    "Rivers",
    "Engines",
    "Ghosts",
    "Harbors",
    "Wolves",
    "Satellites",
    "Gardens",
    "Mirrors",
    "Tides",
    "Lanterns",
    "Comets",
    "Foxes",
    "Cathedrals",
    "Signals",
    "Orchards",
)
_WORDS = (
    "Love",
    "Night",
    "Run",
    "Home",
    "Fire",
    "Rain",
    "Light",
    "Heart",
    "Road",
    "Dream",
    "Summer",
    "Stay",
    "Gone",
    "Blue",
    "Dance",
    "Echo",
    "Wave",
    "Sky",
    "Stone",
    "Glass",
)
_EPOCH_2015 = 1_420_070_400
_SPAN = 10 * 365 * 86_400


def generate_library(
    *,
    seed: int = 0,
    liked_songs: int = 200,
    playlists: int = 10,
    playlist_size: int = 30,
    artists: int = 60,
    albums: int = 40,
    saved_albums: int = 20,
    followed_artists: int = 15,
    featured_rate: float = 0.15,
    duplicate_rate: float = 0.02,
    local_rate: float = 0.01,
    unavailable_rate: float = 0.01,
    followed_playlists: int = 2,
    user_id: str = "user",
) -> dict[str, Any]:
    """A fixture (see docs/sandbox.md) for one main user, the same for the same arguments.

    The catalog holds enough tracks for every liked song to be distinct; playlists
    draw from the same catalog, so a blocked artist shows up in both. A second user,
    ``curator``, owns ``followed_playlists`` playlists that the main user follows.
    """
    counts = {
        "liked_songs": liked_songs, "playlists": playlists, "playlist_size": playlist_size,
        "saved_albums": saved_albums, "followed_artists": followed_artists,
        "followed_playlists": followed_playlists,
    }  # fmt: skip
    for name, value in counts.items():
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")
    for name, value in {"artists": artists, "albums": albums}.items():
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    rates = {
        "featured_rate": featured_rate, "duplicate_rate": duplicate_rate,
        "local_rate": local_rate, "unavailable_rate": unavailable_rate,
    }  # fmt: skip
    for name, rate in rates.items():
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {rate}")
    if saved_albums > albums:
        raise ValueError(f"saved_albums ({saved_albums}) exceeds albums ({albums})")
    if followed_artists > artists:
        raise ValueError(f"followed_artists ({followed_artists}) exceeds artists ({artists})")
    if user_id == "curator":
        raise ValueError("user_id 'curator' is taken by the generated playlist owner")

    rng = random.Random(seed)

    def new_id() -> str:
        return base62_from_bytes(rng.getrandbits(132).to_bytes(17, "big"), 22)

    def title(words: int) -> str:
        return " ".join(rng.choice(_WORDS) for _ in range(words))

    artist_rows = [
        {"id": new_id(), "name": f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {n + 1}"}
        for n in range(artists)
    ]
    album_rows = []
    for n in range(albums):
        year = 1970 + rng.randrange(55)
        album_rows.append(
            {
                "id": new_id(),
                "name": f"{title(2)} ({n + 1})",
                "artist_ids": [artist_rows[n % artists]["id"]],
                "release_date": f"{year}-{1 + rng.randrange(12):02d}-{1 + rng.randrange(28):02d}",
                "album_type": "album" if rng.random() < 0.8 else "single",
            }
        )
    track_count = max(liked_songs + liked_songs // 10, playlist_size * 2, 50)
    track_rows = []
    for n in range(track_count):
        album = album_rows[rng.randrange(albums)]
        artist_ids = [album["artist_ids"][0]]
        name = f"{title(1 + rng.randrange(3))} {n + 1}"
        if rng.random() < featured_rate:
            featured = artist_rows[rng.randrange(artists)]
            if featured["id"] not in artist_ids:
                artist_ids.append(featured["id"])
                name += f" (feat. {featured['name']})"
        track_rows.append(
            {
                "id": new_id(),
                "name": name,
                "artist_ids": artist_ids,
                "album_id": album["id"],
                "duration_ms": 120_000 + rng.randrange(240_000),
                "available": rng.random() >= unavailable_rate,
            }
        )

    def dates(count: int) -> list[str]:
        stamps = sorted((_EPOCH_2015 + rng.randrange(_SPAN) for _ in range(count)), reverse=True)
        return [format_timestamp(stamp) for stamp in stamps]

    liked_ids = [row["id"] for row in rng.sample(track_rows, liked_songs)]
    liked = [
        {"track_id": t, "added_at": at} for t, at in zip(liked_ids, dates(liked_songs), strict=True)
    ]
    album_ids = [row["id"] for row in rng.sample(album_rows, saved_albums)]
    saved = [
        {"album_id": a, "added_at": at}
        for a, at in zip(album_ids, dates(saved_albums), strict=True)
    ]
    followed = [row["id"] for row in rng.sample(artist_rows, followed_artists)]

    def any_track_uri() -> str:
        return f"spotify:track:{rng.choice(track_rows)['id']}"

    def playlist(owner: str, index: int) -> dict[str, Any]:
        items: list[dict[str, Any]] = []
        for at in sorted(dates(playlist_size)):
            roll = rng.random()
            if items and roll < duplicate_rate:
                repeated = rng.choice(items).get("uri") or any_track_uri()
                items.append({"uri": repeated, "added_at": at})
            elif roll < duplicate_rate + local_rate:
                items.append(
                    {
                        "local": {
                            "name": title(2),
                            "artist": f"Local Artist {rng.randrange(20)}",
                            "album": f"Home Recordings {rng.randrange(5)}",
                            "duration_ms": 60_000 + rng.randrange(200_000),
                        },
                        "added_at": at,
                    }
                )
            else:
                items.append(
                    {"uri": f"spotify:track:{rng.choice(track_rows)['id']}", "added_at": at}
                )
            items[-1]["added_by"] = owner
        return {
            "id": new_id(),
            "name": f"{title(2)} mix {index + 1}",
            "owner": owner,
            "collaborative": False,
            "public": rng.random() < 0.5,
            "collaborators": [],
            "items": items,
        }

    owned = [playlist(user_id, n) for n in range(playlists)]
    curated = [playlist("curator", n) for n in range(followed_playlists)]
    return {
        "catalog": {"artists": artist_rows, "albums": album_rows, "tracks": track_rows},
        "playlists": owned + curated,
        "users": [
            {
                "id": user_id,
                "display_name": user_id.capitalize(),
                "liked_songs": liked,
                "saved_albums": saved,
                "followed_artists": followed,
                "playlists": [p["id"] for p in owned + curated],
            },
            {
                "id": "curator",
                "display_name": "Curator",
                "liked_songs": [],
                "saved_albums": [],
                "followed_artists": [],
                "playlists": [p["id"] for p in curated],
            },
        ],
    }


def _parameter_types() -> dict[str, type]:
    return {
        name: type(parameter.default)
        for name, parameter in inspect.signature(generate_library).parameters.items()
    }


def generator_arguments(arguments: Mapping[str, object]) -> dict[str, Any]:
    """``arguments`` checked against ``generate_library``'s: known names, right types.

    Raises ``ValueError`` naming the first unknown argument or badly typed value.
    (``generate_library`` itself checks the ranges.)
    """
    types = _parameter_types()
    checked: dict[str, Any] = {}
    for name, value in arguments.items():
        expected = types.get(name)
        if expected is None:
            raise ValueError(f"unknown generator argument {name!r} (known: {', '.join(types)})")
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, expected):
            raise ValueError(f"{name}: expected {expected.__name__}, got {value!r}")
        checked[name] = value
    return checked


def parse_generator_spec(spec: str) -> dict[str, Any]:
    """``"liked_songs=20000,playlists=300"`` as checked generator arguments.

    Raises ``ValueError`` naming the bad part.
    """
    types = _parameter_types()
    arguments: dict[str, object] = {}
    for part in (piece.strip() for piece in spec.split(",")):
        if not part:
            continue
        name, equals, text = part.partition("=")
        name, text = name.strip(), text.strip()
        if not equals or not name:
            raise ValueError(f"expected name=value, got {part!r}")
        expected = types.get(name)
        if expected is None:
            raise ValueError(f"unknown generator argument {name!r} (known: {', '.join(types)})")
        try:
            arguments[name] = expected(text)
        except ValueError:
            raise ValueError(f"{name}: expected {expected.__name__}, got {text!r}") from None
    return generator_arguments(arguments)
