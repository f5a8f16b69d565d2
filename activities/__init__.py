"""The activities' public surface: what the worker and the workflows may rely on.

The workflows need the error types the activities raise (to decide what is retried
and what parks a batch for a new login); the worker needs the app-wide ``RateGate``
and the process's ``WarmSpotify`` (one connection pool, a warm client per account) it
hands to the activities, and ``CompactFailures``, which keeps every activity's failure
small. How calls to Spotify are made stays in
``activities._spotify_calls``.
"""

from activities._spotify_calls import (
    LEDGER_GATE_FRESH_FOR,
    LOGIN_REQUIRED,
    NON_RETRYABLE_ERROR_TYPES,
    RATE_LIMITED,
    REFUSED,
    SPOTIFY_UNREACHABLE,
    CompactFailures,
    GateClosed,
    RateGate,
    WarmSpotify,
)

__all__ = [
    "LEDGER_GATE_FRESH_FOR",
    "LOGIN_REQUIRED",
    "NON_RETRYABLE_ERROR_TYPES",
    "RATE_LIMITED",
    "REFUSED",
    "SPOTIFY_UNREACHABLE",
    "CompactFailures",
    "GateClosed",
    "RateGate",
    "WarmSpotify",
]
