"""The custom search attributes every enforcement run carries, for the Web UI and list queries."""

from __future__ import annotations

from typing import Final

from temporalio.common import SearchAttributeKey

ENFORCEMENT_ACCOUNT: Final = SearchAttributeKey.for_keyword("EnforcementAccount")
ENFORCEMENT_STATUS: Final = SearchAttributeKey.for_keyword("EnforcementStatus")

ALL: Final[tuple[SearchAttributeKey[str], ...]] = (ENFORCEMENT_ACCOUNT, ENFORCEMENT_STATUS)
