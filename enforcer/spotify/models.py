"""What the client reads from Spotify, as small immutable pydantic models.

Only the fields this project uses are kept; everything else Spotify sends is
ignored, so new fields never break a read. Of the keys Spotify renamed in
February 2026 (``tracks`` -> ``items``, ``track`` -> ``item``) the new one wins
when both are present and the old one is still understood.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

T = TypeVar("T")

Cursor = int | str
"""Where a listing resumes: an offset, or the ``after`` cursor of followed artists."""


class SpotifyModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def _renamed(data: Any, new: str, old: str) -> Any:
    """``data`` with ``new`` filled from ``old`` when only the old key was sent."""
    if isinstance(data, dict) and new not in data and old in data:
        return {**data, new: data[old]}
    return data


class SimplifiedArtist(SpotifyModel):
    id: str | None = None
    """None for the artist of a local file."""
    name: str
    uri: str | None = None


class AlbumRef(SpotifyModel):
    """The album a track appears on, as a track object carries it."""

    id: str | None = None
    name: str = ""
    uri: str | None = None
    artists: list[SimplifiedArtist] = Field(default_factory=list)


class Track(SpotifyModel):
    type: Literal["track"] = "track"
    id: str | None = None
    """None for a local file."""
    name: str
    uri: str
    artists: list[SimplifiedArtist] = Field(default_factory=list)
    """In Spotify's order: the primary artist first, then the featured ones."""
    album: AlbumRef | None = None
    is_local: bool = False

    @property
    def primary_artist(self) -> SimplifiedArtist | None:
        return self.artists[0] if self.artists else None


class Episode(SpotifyModel):
    type: Literal["episode"] = "episode"
    id: str | None = None
    name: str
    uri: str


class Album(SpotifyModel):
    id: str
    name: str
    uri: str
    artists: list[SimplifiedArtist] = Field(default_factory=list)


class Artist(SpotifyModel):
    id: str
    name: str
    uri: str


class UserProfile(SpotifyModel):
    id: str
    display_name: str | None = None
    uri: str | None = None


class SavedTrack(SpotifyModel):
    """A Liked Song with the moment it was liked (what an exact undo must restore)."""

    added_at: datetime
    track: Track


class SavedAlbum(SpotifyModel):
    added_at: datetime
    album: Album


class Playlist(SpotifyModel):
    """A playlist as listed or fetched: enough to decide whether and how to edit it."""

    id: str
    name: str
    uri: str | None = None
    owner_id: str
    owner_name: str | None = None
    collaborative: bool = False
    public: bool | None = None
    snapshot_id: str
    total_items: int | None = None
    """None when Spotify leaves the items out (a playlist someone else owns)."""

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "owner_id" in data:
            return data
        data = _renamed(data, "items", "tracks")
        owner = data.get("owner") or {}
        items = data.get("items") or {}
        return {
            **data,
            "owner_id": owner.get("id"),
            "owner_name": owner.get("display_name"),
            "total_items": items.get("total"),
        }


PlayableItem = Annotated[Track | Episode, Field(discriminator="type")]


class PlaylistItem(SpotifyModel):
    """One entry of a playlist, kept even when it cannot be enforced.

    ``item`` is None when Spotify no longer has the content ("unavailable");
    a local file has ``is_local`` set and a ``spotify:local:...`` URI.
    """

    position: int
    """Zero-based index in the playlist, computed from the page's offset."""
    added_at: datetime | None = None
    added_by: str | None = None
    """The ID of the user who added it (None on some very old playlists)."""
    is_local: bool = False
    item: PlayableItem | None = None

    @model_validator(mode="before")
    @classmethod
    def _prefer_item(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = _renamed(data, "item", "track")
        item = data.get("item")
        if isinstance(item, dict) and "type" not in item:
            item = {**item, "type": "track"}
        added_by = data.get("added_by")
        if isinstance(added_by, dict):
            added_by = added_by.get("id")
        return {**data, "item": item, "added_by": added_by}

    @property
    def uri(self) -> str | None:
        return self.item.uri if self.item is not None else None

    @property
    def unavailable(self) -> bool:
        """Spotify sent no content for this entry (removed from the catalogue)."""
        return self.item is None


class Page(SpotifyModel, Generic[T]):
    """One page of a listing: process ``items``, checkpoint ``next_cursor``, resume there."""

    items: list[T]
    total: int | None = None
    cursor: Cursor | None = None
    """The cursor this page was read from (None for the very first cursor-paged page)."""
    next_cursor: Cursor | None = None
    """Where the next page starts; None when this page is the last."""


class DatedSaveResult(SpotifyModel):
    """What ``save_liked_songs_with_dates`` could do; never silent about lost dates.

    A track in ``dates_lost`` is back in Liked Songs, but through ``/me/library``,
    which has no date: it sits at the top with today's date, because Spotify
    refused the legacy ``timestamped_ids`` endpoint for this account.
    """

    saved: list[str]
    """Every track ID saved, in the order given."""
    dates_lost: list[str] = Field(default_factory=list)

    @property
    def dates_kept(self) -> bool:
        return not self.dates_lost
