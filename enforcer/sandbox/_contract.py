"""Spotify's rules as the sandbox reads them from the published contract.

Taken from the steering repo's ``shared/reference/spotify-web-api.md`` and the
``spotify-openapi.yml`` beside it, never from the client in ``enforcer.spotify``: if one
side gets a limit wrong, the other catches it.
"""

from __future__ import annotations

LIBRARY_URIS_MAX = 40  # PUT/DELETE /me/library, GET /me/library/contains
PLAYLIST_WRITE_MAX = 100  # POST/DELETE /playlists/{id}/items (and legacy /tracks)
PLAYLIST_ITEMS_PAGE_MAX = 50  # GET /playlists/{id}/items: QueryLimit
LEGACY_PLAYLIST_TRACKS_PAGE_MAX = 100  # GET /playlists/{id}/tracks: its own limit
PAGE_MAX = 50  # QueryLimit: /me/tracks, /me/albums, /me/playlists, /me/following
PAGE_DEFAULT = 20
MY_PLAYLISTS_OFFSET_MAX = 100_000
LEGACY_TRACK_IDS_MAX = 50  # PUT/DELETE /me/tracks, GET /me/tracks/contains
# The spec says 20 in the query and 50 in the body; 20 is what Spotify enforces.
LEGACY_ALBUM_IDS_MAX = 20
LEGACY_FOLLOW_IDS_MAX = 50  # PUT/DELETE /me/following, GET /me/following/contains

# Every endpoint the sandbox serves, as counted in ``Counters.calls``.
ENDPOINTS: tuple[str, ...] = (
    "GET /v1/me",
    "GET /v1/me/tracks",
    "PUT /v1/me/tracks",
    "DELETE /v1/me/tracks",
    "GET /v1/me/tracks/contains",
    "GET /v1/me/albums",
    "PUT /v1/me/albums",
    "DELETE /v1/me/albums",
    "GET /v1/me/albums/contains",
    "GET /v1/me/following",
    "PUT /v1/me/following",
    "DELETE /v1/me/following",
    "GET /v1/me/following/contains",
    "PUT /v1/me/library",
    "DELETE /v1/me/library",
    "GET /v1/me/library/contains",
    "GET /v1/me/playlists",
    "GET /v1/playlists/{playlist_id}",
    "GET /v1/playlists/{playlist_id}/items",
    "POST /v1/playlists/{playlist_id}/items",
    "DELETE /v1/playlists/{playlist_id}/items",
    "GET /v1/playlists/{playlist_id}/tracks",
    "POST /v1/playlists/{playlist_id}/tracks",
    "DELETE /v1/playlists/{playlist_id}/tracks",
    "GET /v1/artists/{artist_id}",
    "GET /v1/tracks/{track_id}",
)

# Closed to development-mode apps since the February 2026 migration.
LEGACY_ENDPOINTS = frozenset(
    {
        "PUT /v1/me/tracks",
        "DELETE /v1/me/tracks",
        "PUT /v1/me/albums",
        "DELETE /v1/me/albums",
        "PUT /v1/me/following",
        "DELETE /v1/me/following",
        "GET /v1/playlists/{playlist_id}/tracks",
        "POST /v1/playlists/{playlist_id}/tracks",
        "DELETE /v1/playlists/{playlist_id}/tracks",
    }
)
