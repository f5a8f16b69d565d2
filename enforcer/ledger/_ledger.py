"""``Ledger``: the one object the rest of the service holds, open on one database."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.exc import DBAPIError, OperationalError

from enforcer.ledger._accounts import AccountStore
from enforcer.ledger._chunks import ChunkStore
from enforcer.ledger._engine import create_engine, parse_url, safe_url
from enforcer.ledger._errors import LedgerError
from enforcer.ledger._gate import GateStore
from enforcer.ledger._lists import ListStore
from enforcer.ledger._migrate import upgrade
from enforcer.ledger._plans import PlanStore
from enforcer.ledger._scans import ScanStore
from enforcer.ledger._traffic import TrafficStore


class Ledger(AccountStore, ListStore, ScanStore, PlanStore, ChunkStore, GateStore, TrafficStore):
    """The durable record: accounts, lists, scans, plans, batches, items (cut into
    chunks), the gate, the traffic to Spotify and whose turn it is to write.

    ``await Ledger.open(url)`` connects and upgrades the schema to the newest
    revision; ``await ledger.close()`` (or ``async with``) releases the connections.
    """

    @classmethod
    async def open(cls, url: str) -> Ledger:
        parsed = parse_url(url)
        engine = create_engine(parsed)
        try:
            await upgrade(engine)
        except (OperationalError, DBAPIError, OSError) as error:
            await engine.dispose()
            # The driver's message names the file or host; the URL may hold a password.
            raise LedgerError(
                f"cannot open the ledger at {safe_url(parsed)}: "
                f"{getattr(error, 'orig', None) or error}"
            ) from None
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, parsed)

    async def close(self) -> None:
        await self._engine.dispose()

    async def __aenter__(self) -> Ledger:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
