"""How long activities may take and how they retry, for every workflow of the project."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities import NON_RETRYABLE_ERROR_TYPES

# Spotify's 429s arrive as errors carrying their own exact delay (next_retry_delay),
# which overrides this backoff; the backoff is for 5xx and timeouts. No attempt limit:
# a daily quota is a wait of hours, bounded by the schedule-to-close timeout instead.
SPOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=list(NON_RETRYABLE_ERROR_TYPES),
)

SPOTIFY_PATIENCE = timedelta(days=2)
"""How long a call to Spotify may keep retrying: a daily quota's wait, and then some."""

LEDGER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=list(NON_RETRYABLE_ERROR_TYPES),
)
