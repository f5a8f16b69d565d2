"""The Spotify Web API, as this project uses it.

``SpotifyClient`` reads a person's library page by page and writes in chunks cut to
Spotify's exact limits (``limits``); ``ids`` turns what a person pastes into IDs and
URIs; ``models`` are what the client reads; ``errors`` is everything it raises.
"""

from enforcer.spotify import limits
from enforcer.spotify._endpoints import scopes_of
from enforcer.spotify._generations import (
    Generation,
    GenerationMemory,
    InMemoryGenerationMemory,
    Operation,
)
from enforcer.spotify._http import ENDPOINT_EXTENSION, CallCounts, retry_after_seconds
from enforcer.spotify.client import (
    DEFAULT_API_BASE_URL,
    LIBRARY_KINDS,
    PLAYLIST_ITEM_KINDS,
    REQUIRED_SCOPES,
    SpotifyClient,
)
from enforcer.spotify.errors import (
    AccessTokenExpired,
    BadRequest,
    EndpointGone,
    Forbidden,
    InvalidIdentifier,
    LoginRequired,
    NotFound,
    RateLimited,
    SpotifyError,
    SpotifyHTTPError,
    SpotifyUnreachable,
    TransientError,
)
from enforcer.spotify.ids import (
    InvalidURI,
    Kind,
    normalise_uri,
    parse_album_id,
    parse_artist_id,
    parse_id,
    parse_playlist_id,
    parse_track_id,
    parse_uri,
    to_uri,
)
from enforcer.spotify.models import (
    Album,
    AlbumRef,
    Artist,
    Cursor,
    DatedSaveResult,
    Episode,
    Page,
    Playlist,
    PlaylistItem,
    SavedAlbum,
    SavedTrack,
    SimplifiedArtist,
    Track,
    UserProfile,
)
from enforcer.spotify.tokens import AccessTokenProvider, TokenSet

__all__ = [
    "DEFAULT_API_BASE_URL",
    "ENDPOINT_EXTENSION",
    "LIBRARY_KINDS",
    "PLAYLIST_ITEM_KINDS",
    "REQUIRED_SCOPES",
    "AccessTokenExpired",
    "AccessTokenProvider",
    "Album",
    "AlbumRef",
    "Artist",
    "BadRequest",
    "CallCounts",
    "Cursor",
    "DatedSaveResult",
    "EndpointGone",
    "Episode",
    "Forbidden",
    "Generation",
    "GenerationMemory",
    "InMemoryGenerationMemory",
    "InvalidIdentifier",
    "InvalidURI",
    "Kind",
    "LoginRequired",
    "NotFound",
    "Operation",
    "Page",
    "Playlist",
    "PlaylistItem",
    "RateLimited",
    "SavedAlbum",
    "SavedTrack",
    "SimplifiedArtist",
    "SpotifyClient",
    "SpotifyError",
    "SpotifyHTTPError",
    "SpotifyUnreachable",
    "TokenSet",
    "Track",
    "TransientError",
    "UserProfile",
    "limits",
    "normalise_uri",
    "parse_album_id",
    "parse_artist_id",
    "parse_id",
    "parse_playlist_id",
    "parse_track_id",
    "parse_uri",
    "retry_after_seconds",
    "scopes_of",
    "to_uri",
]
