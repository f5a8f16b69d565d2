"""The custom search attributes every enforcement run carries, for the Web UI and list queries."""

from __future__ import annotations

from typing import Final

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from enforcer.models import BatchStatus

ENFORCEMENT_ACCOUNT: Final = SearchAttributeKey.for_keyword("EnforcementAccount")
ENFORCEMENT_STATUS: Final = SearchAttributeKey.for_keyword("EnforcementStatus")

ALL: Final[tuple[SearchAttributeKey[str], ...]] = (ENFORCEMENT_ACCOUNT, ENFORCEMENT_STATUS)


def new_batch_attributes(account_label: str) -> TypedSearchAttributes:
    """What a batch (enforcement or rollback) starts with: its account, and pending."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(ENFORCEMENT_ACCOUNT, account_label),
            SearchAttributePair(ENFORCEMENT_STATUS, BatchStatus.PENDING.value),
        ]
    )
