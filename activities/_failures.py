"""Every failure an activity hands to Temporal is small and says what happened.

Invariant: whatever an activity raises reaches Temporal as one ``ApplicationError``: its
type (ours, such as ``SpotifyUnreachable``, or the Python class of an unexpected error),
a message of at most ``MESSAGE_LIMIT`` characters, the retry decision, and no cause chain
and no details. The whole chain, tracebacks included, goes to the worker's log instead.
Every activity error is made by ``activity_error`` or ``compact``; ``CompactFailures``
(in ``activities._spotify_calls``) applies ``compact`` to whatever an activity raises.

Why: Temporal keeps the last failure of an activity that is still retrying within a few
KiB (4 KiB on the dev server) and replaces a larger one with "Failure exceeds size
limit.", which hides the one thing a person waiting on a retrying activity needs to read.
A single broken connection made such a failure: httpx's, httpcore's and the socket's
errors, each with its own traceback. Errors of the ledger can quote whole SQL statements.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

MESSAGE_LIMIT: Final = 1_000
_ELLIPSIS: Final = " [...]"


def shortened(message: str) -> str:
    """``message`` cut to ``MESSAGE_LIMIT`` characters, saying so when it was cut."""
    if len(message) <= MESSAGE_LIMIT:
        return message
    return message[: MESSAGE_LIMIT - len(_ELLIPSIS)] + _ELLIPSIS


def activity_error(
    message: str,
    *,
    type: str,
    non_retryable: bool = False,
    next_retry_delay: timedelta | None = None,
    expected: bool = False,
) -> ApplicationError:
    """The one way an activity's failure is made: short, and with nothing chained.

    ``expected``: a failure the project plans for (a 429, a 5xx, a login to renew), not
    a fault: Temporal's SDK logs it at DEBUG, with no traceback, and leaves it out of its
    failure metrics; the worker's log tells it in one line of its own."""
    error = ApplicationError(
        shortened(message),
        type=type,
        non_retryable=non_retryable,
        next_retry_delay=next_retry_delay,
        category=(
            ApplicationErrorCategory.BENIGN if expected else ApplicationErrorCategory.UNSPECIFIED
        ),
    )
    # Raised inside an ``except`` block, an error would carry the one it replaces as
    # its context, and Temporal would send that along as the cause.
    error.__suppress_context__ = True
    return error


def compact(error: Exception, *, expected: bool = False) -> ApplicationError:
    """``error`` as Temporal should store it (see the module's invariant); ``expected``
    as ``activity_error`` has it (kept when ``error`` already is)."""
    if isinstance(error, ApplicationError):
        return activity_error(
            error.message,
            type=error.type or "ApplicationError",
            non_retryable=error.non_retryable,
            next_retry_delay=error.next_retry_delay,
            expected=expected or error.category is ApplicationErrorCategory.BENIGN,
        )
    return activity_error(str(error) or type(error).__name__, type=type(error).__name__)
