"""The hand-written planner library (tests/fixtures/planner_library.json), read for real.

Its names, for the answers written out by hand in the tests: who is blocked, what is
protected, and the IDs of everything that matters.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from enforcer.library import read_library
from enforcer.models import BlockedArtist, LibrarySnapshot, PlanOptions, ProtectList
from enforcer.sandbox import Sandbox
from tests.spotify.sandbox_client import sandbox_client
from tests.support.contract import ContractRecorder

PLANNER_LIBRARY = Path(__file__).resolve().parent.parent / "fixtures" / "planner_library.json"
ACCOUNT = "alice"

BLOCKED_BAND = "arBlockedBand000000000"
SHADOW_MC = "arShadowMc000000000000"
NOVA = "arNova0000000000000000"
GOOD_SINGER = "arGoodSinger0000000000"

BLOCKLIST = (
    BlockedArtist(artist_id=BLOCKED_BAND, name="Blocked Band"),
    BlockedArtist(artist_id=SHADOW_MC, name="Shadow MC"),
    BlockedArtist(artist_id=NOVA, name="Nova"),
)

BLOCKED_ANTHEM = "trBlockedAnthem0000000"
TOGETHER = "trTogether000000000000"
GUEST_VERSE = "trGuestVerse0000000000"
DUO_SONG = "trDuoSong0000000000000"
SHINE = "trShine000000000000000"
GOOD_MORNING = "trGoodMorning000000000"
MIDNIGHT = "trMidnight000000000000"
SHADOW_SOLO = "trShadowSolo0000000000"
RAIN = "trRain0000000000000000"
NIGHT_DRIVE = "trNightDrive0000000000"
DEMO_TAPE = "spotify:local:Blocked+Band:Basement:Demo+Tape:125"

BLOCKED_HITS = "alBlockedHits000000000"
SPLIT_SINGLE = "alSplitSingle000000000"

ALICE_MIX = "plAliceMix000000000000"
KEEP_FOREVER = "plAliceKeep00000000000"
ROAD_TRIP = "plRoadTrip000000000000"
BOB_FAVOURITES = "plBobFavourites0000000"
OLD_CHILL = "plOldChill000000000000"

PROTECT = ProtectList(track_ids=frozenset({SHADOW_SOLO}), playlist_ids=frozenset({KEEP_FOREVER}))


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def track_uri(track_id: str) -> str:
    return f"spotify:track:{track_id}"


def planner_sandbox() -> Sandbox:
    sandbox = Sandbox()
    sandbox.load_fixture(PLANNER_LIBRARY)
    return sandbox


async def read(
    sandbox: Sandbox, recorder: ContractRecorder, options: PlanOptions | None = None
) -> LibrarySnapshot:
    """``ACCOUNT``'s library through the real client, every exchange contract-checked."""
    async with sandbox_client(sandbox, recorder, user_id=ACCOUNT) as client:
        return await read_library(client, ACCOUNT, options or PlanOptions())
