"""The domain's shared types: what a blocklist is, what a plan says, what it changes.

Workflows, activities, the planner and the ledger all speak these pydantic models.
Workflows only ever carry the small ones (``PlanRequest``, ``PlanResult``): a plan's
actions live in the ledger and are read back page by page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from enforcer.spotify.models import Artist, Playlist, PlaylistItem, SavedAlbum, SavedTrack


class DomainModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


RequestId = Annotated[str, Field(min_length=1, max_length=512)]
"""An account, plan or batch ID in a workflow's request: never empty, never a novel.
(Workflow IDs embed them, and Temporal caps a workflow ID at 1,000 bytes.)"""


# The blocklist and the protect list ---------------------------------------------


class BlockedArtist(DomainModel):
    """An artist the person never wants to hear."""

    artist_id: str
    name: str


class ProtectList(DomainModel):
    """What enforcement never touches, whatever the blocklist says."""

    track_ids: frozenset[str] = frozenset()
    playlist_ids: frozenset[str] = frozenset()


# Policy --------------------------------------------------------------------------


class Policy(StrEnum):
    """Which credits make a track blocked."""

    PRIMARY = "primary"
    """Only when a blocked artist is the track's primary (first) artist."""
    FEATURED = "featured"
    """When a blocked artist is credited anywhere on the track (the default)."""
    MENTIONS = "mentions"
    """As ``featured``, and also a blocked artist named in the title after
    "feat.", "ft.", "with" or "x"."""


class PlanOptions(DomainModel):
    policy: Policy = Policy.FEATURED
    include_collaborative: bool = False
    """Also edit collaborative playlists the person does not own."""


# The library as scanned --------------------------------------------------------


class ScannedPlaylist(DomainModel):
    """A playlist from ``/me/playlists`` and, when it was read, its every entry."""

    playlist: Playlist
    items: tuple[PlaylistItem, ...] | None = None
    """None when the playlist was not read: enforcement never edits it."""


class LibrarySnapshot(DomainModel):
    """Everything the planner looks at, as read from Spotify, in Spotify's order."""

    account_id: str
    liked_songs: tuple[SavedTrack, ...] = ()
    saved_albums: tuple[SavedAlbum, ...] = ()
    followed_artists: tuple[Artist, ...] = ()
    playlists: tuple[ScannedPlaylist, ...] = ()


# What a plan says ----------------------------------------------------------------


class EntityType(StrEnum):
    LIKED_SONG = "liked_song"
    PLAYLIST_ITEM = "playlist_item"
    SAVED_ALBUM = "saved_album"
    FOLLOWED_ARTIST = "followed_artist"


class Action(StrEnum):
    REMOVE = "remove"
    """Unlike a song, take a track out of a playlist, remove an album, unfollow an artist."""
    RESTORE = "restore"
    """The compensation of a removal."""


class MatchRule(StrEnum):
    PRIMARY_ARTIST = "primary_artist"
    FEATURED_ARTIST = "featured_artist"
    TITLE_MENTION = "title_mention"
    ALBUM_ARTIST = "album_artist"
    FOLLOWED_ARTIST = "followed_artist"


class Reason(DomainModel):
    """Why an entity matches the blocklist: which blocked artist, by which rule."""

    artist_id: str
    artist_name: str
    rule: MatchRule


class Occurrence(DomainModel):
    """One place a track holds in a playlist, with who put it there and when."""

    position: int
    added_at: datetime | None = None
    added_by: str | None = None


class LikedSongBefore(DomainModel):
    kind: Literal["liked_song"] = "liked_song"
    added_at: datetime


class PlaylistItemBefore(DomainModel):
    kind: Literal["playlist_item"] = "playlist_item"
    playlist_id: str
    playlist_name: str
    snapshot_id: str
    occurrences: tuple[Occurrence, ...]
    """Every position the URI holds, ascending: one removal takes them all."""


SNAPSHOT_AFTER = "snapshot_id"
"""The key of a removed playlist item's ``after_state`` that holds the ``snapshot_id``
its removal returned: the playlist as enforcement left it, for a rollback to compare."""


class SavedAlbumBefore(DomainModel):
    kind: Literal["saved_album"] = "saved_album"
    added_at: datetime


class FollowedArtistBefore(DomainModel):
    kind: Literal["followed_artist"] = "followed_artist"


BeforeState = Annotated[
    LikedSongBefore | PlaylistItemBefore | SavedAlbumBefore | FollowedArtistBefore,
    Field(discriminator="kind"),
]


class PlannedAction(DomainModel):
    """One change the plan will make, with its reasons and what undoing it needs."""

    entity_type: EntityType
    entity_id: str
    """The Spotify ID of the track, album or artist."""
    container_id: str | None = None
    """The playlist, for a playlist item."""
    uri: str
    name: str
    artist_names: tuple[str, ...] = ()
    action: Action = Action.REMOVE
    reasons: tuple[Reason, ...]
    before: BeforeState

    @property
    def key(self) -> str:
        """Stable and unique within a plan: no time, no randomness."""
        return ":".join((self.entity_type, self.container_id or "-", self.entity_id, self.action))


class NotEnforcedWhy(StrEnum):
    LOCAL_FILE = "local_file"
    """Spotify's API can neither add nor remove local files."""
    UNAVAILABLE = "unavailable"
    """Spotify no longer sends the content: its artists cannot be checked."""
    PROTECTED_TRACK = "protected_track"
    PROTECTED_PLAYLIST = "protected_playlist"
    COLLABORATIVE = "collaborative"
    """A collaborative playlist of someone else's, left alone unless asked for."""
    NOT_OWNED = "not_owned"
    """A playlist someone else owns: Spotify lets no one else change it."""


class NotEnforced(DomainModel):
    """Something the plan leaves as it is, and why: never silently skipped."""

    why: NotEnforcedWhy
    entity_type: EntityType
    name: str
    uri: str | None = None
    container_id: str | None = None
    container_name: str | None = None
    positions: tuple[int, ...] = ()
    reasons: tuple[Reason, ...] = ()
    """Empty when nothing could be checked (an unavailable entry)."""


class PlanCounts(DomainModel):
    """How much was read and what the plan does with it."""

    scanned: dict[EntityType, int]
    """Entities read, per type (playlist items: entries of the playlists read)."""
    actions: dict[EntityType, int]
    not_enforced: dict[NotEnforcedWhy, int]
    playlists_read: int
    playlists_touched: int


class Plan(DomainModel):
    """A dry run: what enforcement would change, why, and what it would leave."""

    id: str
    """A hash of the plan's content and inputs: same library, blocklist and options,
    same ID."""
    account_id: str
    options: PlanOptions
    blocklist: tuple[BlockedArtist, ...]
    actions: tuple[PlannedAction, ...]
    not_enforced: tuple[NotEnforced, ...]
    counts: PlanCounts


# Batches and their items -------------------------------------------------------------


class BatchKind(StrEnum):
    ENFORCE = "enforce"
    ROLLBACK = "rollback"


class BatchStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    WAITING_FOR_LOGIN = "waiting_for_login"
    WAITING_FOR_TURN = "waiting_for_turn"
    """Another batch of the account is writing to its library: this one waits."""
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ROLLED_BACK = "rolled_back"
    PARTLY_ROLLED_BACK = "partly_rolled_back"
    """Some of what the batch removed is back (a rollback of chosen items), not all."""


TERMINAL_BATCH_STATUSES = frozenset(
    {
        BatchStatus.COMPLETED,
        BatchStatus.FAILED,
        BatchStatus.CANCELLED,
        BatchStatus.ROLLED_BACK,
        BatchStatus.PARTLY_ROLLED_BACK,
    }
)


class ItemStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ROLLED_BACK = "rolled_back"


def status_after_rollback(counts: Mapping[ItemStatus, int]) -> BatchStatus | None:
    """What a batch is once rollbacks put back some of its items (``counts``: its items
    per status): rolled back when none is left completed, partly rolled back while some
    are; None when nothing of it is back."""
    if not counts.get(ItemStatus.ROLLED_BACK):
        return None
    if counts.get(ItemStatus.COMPLETED):
        return BatchStatus.PARTLY_ROLLED_BACK
    return BatchStatus.ROLLED_BACK


TERMINAL_ITEM_STATUSES = frozenset(
    {ItemStatus.COMPLETED, ItemStatus.FAILED, ItemStatus.SKIPPED, ItemStatus.ROLLED_BACK}
)


# What workflows carry ------------------------------------------------------------


class PlanRequest(DomainModel):
    account_id: RequestId
    options: PlanOptions = PlanOptions()
    full: bool = False
    """Read the whole library, not only what changed since the last completed scan.
    How the library is read, not what the plan is: a full and an incremental scan of
    the same library give the same plan, with the same ID."""


class PlanResult(DomainModel):
    plan_id: str
    counts: PlanCounts


class LibrarySection(StrEnum):
    """A listing the planning scan reads whole; playlist items are read per playlist."""

    LIKED_SONGS = "liked_songs"
    SAVED_ALBUMS = "saved_albums"
    FOLLOWED_ARTISTS = "followed_artists"
    PLAYLISTS = "playlists"


class ScanSectionRequest(DomainModel):
    scan_id: str
    account_id: str
    section: LibrarySection
    previous_scan_id: str | None = None
    """The account's last completed scan, whose pages may stand for what is unchanged;
    None reads the section whole."""


class ScanPlaylistItemsRequest(DomainModel):
    """Read the items of the scanned playlists ``first`` to ``stop`` (exclusive)."""

    scan_id: str
    account_id: str
    options: PlanOptions
    first: int
    stop: int
    previous_scan_id: str | None = None
    """A playlist whose ``snapshot_id`` is the one this scan stored is copied from it."""


class ScanProgress(DomainModel):
    """What one scan activity read: pages stored in the ledger and items in them."""

    pages: int
    items: int


class CompletedScan(DomainModel):
    """A scan whose plan is stored: the account's last completed scan from now on."""

    scan_id: str
    account_id: str


class BuildPlanRequest(DomainModel):
    scan_id: str
    account_id: str
    options: PlanOptions


class ScanStep(StrEnum):
    """A part of the planning scan as its progress shows it: the four listings (the
    ``LibrarySection`` of the same value), then the entries of the playlists."""

    LIKED_SONGS = "liked_songs"
    SAVED_ALBUMS = "saved_albums"
    FOLLOWED_ARTISTS = "followed_artists"
    PLAYLISTS = "playlists"
    PLAYLIST_ENTRIES = "playlist_entries"


class ScanState(StrEnum):
    NOT_STARTED = "not_started"
    READING = "reading"
    DONE = "done"


class StepProgress(DomainModel):
    """How far one step of the scan got."""

    state: ScanState = ScanState.NOT_STARTED
    pages: int = 0
    """Pages read and stored in the ledger so far."""
    items: int = 0
    playlists: int | None = None
    """The entries step: how many playlists there are (known once they are listed)."""
    playlists_done: int = 0
    """The entries step: playlists whose entries are read (or that are not read at all)."""
    done_from: tuple[int, ...] = ()
    """The entries step: the first playlist of each range of playlists read whole (one
    activity each), so that a running activity's figures are never counted twice."""


class RunningScan(DomainModel):
    """What a scan activity still running has stored so far, as its last heartbeat says."""

    step: ScanStep
    pages: int
    items: int
    first: int = 0
    """The entries step: the first playlist of the activity's range."""
    playlists_done: int = 0


class PlanningProgress(DomainModel):
    """The planning workflow's state, as its ``progress`` query answers it: what the
    workflow knows (each step's state; the figures of the steps and ranges done). The
    figures of the activities still running, the requests and the 429s are not the
    workflow's to know (that would take history events per page): ``live`` adds them."""

    scan_id: str
    """The scan's ID, which owns its requests in the ledger's traffic."""
    stage: str
    steps: dict[ScanStep, StepProgress] = Field(
        default_factory=lambda: {step: StepProgress() for step in ScanStep}
    )
    requests: int = 0
    """Requests sent to Spotify for this scan so far."""
    rate_limited: int = 0
    """429 answers among them."""
    waiting_until: datetime | None = None
    """When the scan reads again after a rate limit (the first of its activities waiting
    to try again); None when none waits."""
    plan_id: str | None = None
    """Set once the plan is stored."""

    def live(
        self,
        running: Iterable[RunningScan],
        traffic: ApiTraffic,
        waiting_until: datetime | None = None,
    ) -> PlanningProgress:
        """This progress with the figures of the ``running`` activities added to the steps
        still reading (an activity already counted done is skipped), ``traffic``'s
        requests and 429s, and the end of the rate limit waited for."""
        steps = dict(self.steps)
        for scan in running:
            step = steps[scan.step]
            if step.state is not ScanState.READING or (
                scan.step is ScanStep.PLAYLIST_ENTRIES and scan.first in step.done_from
            ):
                continue
            steps[scan.step] = step.model_copy(
                update={
                    "pages": step.pages + scan.pages,
                    "items": step.items + scan.items,
                    "playlists_done": step.playlists_done + scan.playlists_done,
                }
            )
        return self.model_copy(
            update={
                "steps": steps,
                "requests": traffic.sent,
                "rate_limited": traffic.rate_limited,
                "waiting_until": waiting_until,
            }
        )


# Enforcement -----------------------------------------------------------------------


MOST_IN_FLIGHT: Final = 32
"""The most Spotify requests a batch may keep in flight, and a worker process at once."""


class EnforcementRequest(DomainModel):
    """Carry out a stored plan. The workflow ID ``enforce/{account}/{plan}`` makes a
    second start of the same plan join the first or return its result."""

    account_id: RequestId
    plan_id: RequestId
    account_label: str | None = None
    """What the workflow's unencrypted fields (its search attributes) call the account
    when payloads are encrypted; None: the account ID itself."""
    max_in_flight: int = Field(default=4, ge=1, le=MOST_IN_FLIGHT)
    """Chunk activities running at once; the chunks of one playlist always run in order."""
    atomic: bool = False
    """All or nothing: a batch that ends with a failed item, or cancelled, is rolled back."""
    chunks_per_run: int | None = Field(default=None, ge=1)
    """Continue as new after this many chunks; None: when the run's history is full."""
    state: BatchState | None = None
    """Set only by the workflow itself when it continues as new."""


LIBRARY_LANE: Final = -1
"""The lane of library chunks (no order between them); playlists' lanes are 0, 1..."""


class ChunkLayout(DomainModel):
    """How a batch's items were cut into Spotify calls, stored in the ledger."""

    chunks: int
    """Chunks are numbered 0..chunks-1: library chunks first, then playlist by playlist."""
    library_chunks: int
    playlist_chunks: int
    totals: dict[EntityType, int]
    """Items per entity type in the batch."""


class ChunkLanes(DomainModel):
    """For chunks ``first``.., the lane each belongs to: chunks of one lane (one
    playlist) run strictly in order; lane -1 (the library) has no order."""

    first: int
    lanes: tuple[int, ...]


class ChunkRequest(DomainModel):
    batch_id: str
    account_id: str
    chunk: int


class ChunksRequest(DomainModel):
    """Chunks applied one after another by one activity, a lane's in its order."""

    batch_id: str
    account_id: str
    chunks: tuple[int, ...] = Field(min_length=1)


class ChunkFailure(DomainModel):
    """A chunk that failed for good, and the error its items end with."""

    chunk: ChunkRequest
    error: str


class ItemTally(DomainModel):
    completed: int = 0
    failed: int = 0
    skipped: int = 0

    def __add__(self, other: ItemTally) -> ItemTally:
        return ItemTally(
            completed=self.completed + other.completed,
            failed=self.failed + other.failed,
            skipped=self.skipped + other.skipped,
        )

    @property
    def done(self) -> int:
        return self.completed + self.failed + self.skipped


class ItemError(DomainModel):
    """An item that ended failed or skipped, why, and after how many attempts."""

    key: str
    name: str
    error: str
    attempts: int


class SkipReason(DomainModel):
    """Why items of a batch were skipped (not an error: Spotify would not let the app do
    it, another batch did it first, the batch was cancelled), and how many."""

    reason: str
    items: int


class WaitPeriod(DomainModel):
    """A stretch of time the app's rate-limit gate held a chunk back."""

    start: datetime
    end: datetime


def merge_waits(periods: Iterable[WaitPeriod]) -> tuple[WaitPeriod, ...]:
    """The same time as disjoint periods: chunks held back together waited once."""
    merged: list[WaitPeriod] = []
    for period in sorted(periods, key=lambda p: p.start):
        if merged and period.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = WaitPeriod(start=last.start, end=max(last.end, period.end))
        else:
            merged.append(period)
    return tuple(merged)


def waited_seconds(periods: Iterable[WaitPeriod]) -> float:
    return sum((p.end - p.start).total_seconds() for p in merge_waits(periods))


SENT: Final = "sent"
"""``ApiTraffic`` outcome counted before a request leaves for Spotify."""
HELD_BACK: Final = "held_back"
"""``ApiTraffic`` outcome of an attempt the rate gate kept in: nothing was sent."""
WITHDRAWN: Final = "withdrawn"
"""``ApiTraffic`` outcome of a request counted ``sent`` that the gate then kept in (a
429 closed it while the count was being written): it never left."""


class ApiTraffic(DomainModel):
    """What an owner's (a batch's, a scan's) requests to Spotify did, as the ledger
    counted them while they happened: ``calls[endpoint][outcome]``, where the outcome
    is ``sent``, ``withdrawn``, ``held_back`` or the HTTP status of the answer. A
    request sent but never answered (its worker died, or it timed out) is in ``sent``
    alone."""

    calls: dict[str, dict[str, int]] = Field(default_factory=dict)
    waited_seconds: float = 0.0
    """The time requests were kept waiting by 429s, overlapping waits counted once."""

    def _total(self, outcome: str) -> int:
        return sum(outcomes.get(outcome, 0) for outcomes in self.calls.values())

    @property
    def sent(self) -> int:
        """Requests that left for Spotify: what Spotify's own counters see."""
        return self._total(SENT) - self._total(WITHDRAWN)

    def sent_by_endpoint(self) -> dict[str, int]:
        """Requests that left for Spotify, by endpoint (those it never saw left out)."""
        sent = {
            endpoint: outcomes.get(SENT, 0) - outcomes.get(WITHDRAWN, 0)
            for endpoint, outcomes in self.calls.items()
        }
        return {endpoint: count for endpoint, count in sent.items() if count}

    @property
    def held_back(self) -> int:
        return self._total(HELD_BACK)

    @property
    def rate_limited(self) -> int:
        """429 answers received."""
        return self._total("429")

    def by_status(self) -> dict[str, int]:
        """Answers by HTTP status, and ``unanswered`` requests (sent, no answer seen)."""
        statuses: dict[str, int] = {}
        for outcomes in self.calls.values():
            for outcome, count in outcomes.items():
                if outcome not in (SENT, WITHDRAWN, HELD_BACK):
                    statuses[outcome] = statuses.get(outcome, 0) + count
        unanswered = self.sent - sum(statuses.values())
        if unanswered:
            statuses["unanswered"] = unanswered
        return dict(sorted(statuses.items()))


class ChunkOutcome(DomainModel):
    """What one activity's chunks did: their items' fates, and the batch's traffic when
    the last of them ended. An activity stopped early (a pause, a cancel, a worker
    shutting down) names only the chunks it finished; the others run again later."""

    chunks: tuple[int, ...]
    """The chunks finished: every item of them ended."""
    tallies: dict[EntityType, ItemTally] = Field(default_factory=dict)
    traffic: ApiTraffic = Field(default_factory=ApiTraffic)
    """The whole batch's requests so far, as the ledger counted them."""
    legacy_operations: tuple[str, ...] = ()
    """Operations Spotify made us run on the legacy endpoints (a forced fallback)."""


class ItemsBack(DomainModel):
    """How much of what a batch removed is back, after its rollbacks so far."""

    back: int
    """Items of the batch rolled back (by any of its rollbacks)."""
    removed: int
    """Items the batch removed: those rolled back and those still removed."""


class BatchOutcome(DomainModel):
    """What became of a batch, as the ledger records it."""

    status: BatchStatus
    items_back: ItemsBack


def _no_chunks() -> ChunkLayout:
    return ChunkLayout(chunks=0, library_chunks=0, playlist_chunks=0, totals={})


class BatchState(DomainModel):
    """A batch workflow's state, in one structure: what its ``progress`` query and the
    Web UI show, and all that a run hands to the next when it continues as new."""

    model_config = ConfigDict(frozen=False, extra="forbid")

    batch_id: str = ""
    status: BatchStatus = BatchStatus.PENDING
    started_at: datetime | None = None
    layout: ChunkLayout = Field(default_factory=_no_chunks)
    tallies: dict[EntityType, ItemTally] = Field(default_factory=dict)
    chunks_done: int = 0
    next_position: int = 0
    """Where in the batch's order of chunks the next run starts."""
    traffic: ApiTraffic = Field(default_factory=ApiTraffic)
    """The newest count of the batch's requests (outcomes may arrive out of order)."""
    legacy_operations: tuple[str, ...] = ()
    paused: bool = False
    cancelled: bool = False
    roll_back: bool = False
    """Enforcement only: undo the batch once it has stopped."""
    waiting_for: str | None = None
    """What the batch is waiting for, in words (another batch's turn, a login)."""
    rollback_id: str | None = None
    """Enforcement only: the rollback that undid the batch, once one has run."""
    items_back: ItemsBack | None = None
    """Once a rollback has run, of the batch undone: how much of it is back."""

    def count(self, outcome: ChunkOutcome) -> None:
        """Adds finished chunks' outcome (outcomes may come in any order)."""
        self.chunks_done += len(outcome.chunks)
        for entity_type, tally in outcome.tallies.items():
            self.tallies[entity_type] = self.tallies.get(entity_type, ItemTally()) + tally
        if outcome.traffic.sent + outcome.traffic.held_back >= (
            self.traffic.sent + self.traffic.held_back
        ):
            self.traffic = outcome.traffic
        self.legacy_operations = tuple(
            sorted({*self.legacy_operations, *outcome.legacy_operations})
        )


class StartBatch(DomainModel):
    batch_id: str
    request: EnforcementRequest


class ChunkLanesRequest(DomainModel):
    batch_id: str
    first: int
    count: int


class AccountTurn(DomainModel):
    """A batch asking for (or giving up) the turn to write to an account's library."""

    account_id: str
    batch_id: str


class BatchStatusChange(DomainModel):
    batch_id: str
    status: BatchStatus


class FinishBatch(DomainModel):
    """What only the workflow knows; the ledger has the items' ends and the traffic."""

    batch_id: str
    plan_id: str
    account_id: str
    status: BatchStatus
    started_at: datetime
    legacy_operations: tuple[str, ...]


class EnforcementProgress(DomainModel):
    """What the ``progress`` query answers and the Web UI shows."""

    batch_id: str
    plan_id: str
    status: BatchStatus
    totals: dict[EntityType, int]
    tallies: dict[EntityType, ItemTally]
    chunks_total: int
    chunks_done: int
    api_calls: int
    rate_limit_waits: int
    rate_limit_wait_seconds: float
    started_at: datetime | None = None
    eta_seconds: float | None = None
    waiting_for: str | None = None


class EnforcementSummary(DomainModel):
    """The batch's result: stored in the ledger and returned by the workflow."""

    batch_id: str
    plan_id: str
    account_id: str
    status: BatchStatus
    totals: dict[EntityType, int]
    tallies: dict[EntityType, ItemTally]
    api_calls: int
    """Requests that left for Spotify (``traffic.sent``)."""
    rate_limit_waits: int
    """429 answers received."""
    rate_limit_wait_seconds: float
    duration_seconds: float
    traffic: ApiTraffic = Field(default_factory=ApiTraffic)
    """Requests by endpoint and outcome, and those the rate gate held back."""
    rolled_back_by: str | None = None
    """The rollback workflow that undid the batch (by signal, or an atomic batch's)."""
    legacy_operations: tuple[str, ...] = ()
    errors: tuple[ItemError, ...] = ()
    """Items that failed, with why (a skipped item is not an error: ``skipped``)."""
    errors_omitted: int = 0
    """Errors beyond the first ones listed (the ledger has every item's error)."""
    skipped: tuple[SkipReason, ...] = ()
    """Why items were skipped, the most items first."""
    skipped_reasons_omitted: int = 0
    """Reasons beyond those listed."""


# Kept, not once: a scheduled run --------------------------------------------------


class KeepRequest(DomainModel):
    """One run of an account's schedule: plan, then enforce what is new."""

    account_id: RequestId
    account_label: str | None = None
    """What workflow IDs and search attributes call the account (see EnforcementRequest)."""
    options: PlanOptions = PlanOptions()
    max_in_flight: int = Field(default=4, ge=1, le=MOST_IN_FLIGHT)
    settle_seconds: float = Field(default=5.0, ge=0, le=600)
    """The blocklist must stay unchanged this long before a run plans: ten additions in
    a row make one run, not ten."""


class BlocklistState(DomainModel):
    """Which blocklist a run plans with: a hash of its artists, and how many there are."""

    fingerprint: str
    artists: int


class PauseForRollback(DomainModel):
    """A rollback about to put items back pauses the account's schedule (if any)."""

    account_label: str
    """What the schedule's ID calls the account (``keep/{account_label}``)."""
    rollback_id: str


class RemovedCounts(DomainModel):
    """What a batch removed (items completed), by kind and by blocked artist; an item
    matching two blocked artists counts for each."""

    by_kind: dict[EntityType, int] = Field(default_factory=dict)
    by_artist: dict[str, int] = Field(default_factory=dict)


class KeptBatch(DomainModel):
    """A batch a scheduled run started, how it ended and what it removed."""

    batch_id: str
    plan_id: str
    status: BatchStatus
    removed: RemovedCounts


class KeepRunSummary(DomainModel):
    """A scheduled run's result: the Web UI's recent actions and `schedule show` read it.

    No batch: the library already obeyed the blocklist (or the plan had a batch already).
    More than one: the blocklist changed while the run enforced, and it went on with it.
    """

    plan_id: str | None = None
    """The last plan made (None: the blocklist was empty, nothing was planned)."""
    batches: tuple[KeptBatch, ...] = ()
    already_enforced_as: str | None = None
    """The batch that had enforced the last plan before this run (a manual `enforce`)."""
    plans_made: int = 0
    outpaced: bool = False
    """The blocklist changed after each of the run's plans: the next run goes on."""

    def removed(self) -> RemovedCounts:
        by_kind: dict[EntityType, int] = {}
        by_artist: dict[str, int] = {}
        for batch in self.batches:
            for kind, count in batch.removed.by_kind.items():
                by_kind[kind] = by_kind.get(kind, 0) + count
            for artist, count in batch.removed.by_artist.items():
                by_artist[artist] = by_artist.get(artist, 0) + count
        return RemovedCounts(by_kind=by_kind, by_artist=by_artist)


# Rollback --------------------------------------------------------------------------


class RollbackRequest(DomainModel):
    """Undo a finished batch, or chosen items of it (``item_keys``: the batch's item
    keys; None for every item). The workflow ID ``rollback/{batch}[/{selection}]``
    makes a second start while one runs join it."""

    account_id: RequestId
    batch_id: RequestId
    item_keys: Annotated[tuple[RequestId, ...], Field(min_length=1)] | None = None
    account_label: str | None = None
    """What the workflow's unencrypted fields (its search attributes) call the account
    when payloads are encrypted; None: the account ID itself."""
    max_in_flight: int = Field(default=4, ge=1, le=MOST_IN_FLIGHT)
    """Chunks restored at once; the chunks of one playlist go one after another."""
    chunks_per_run: int | None = Field(default=None, ge=1)
    """Continue as new after this many chunks; None: when the run's history is full."""
    state: RollbackState | None = None
    """Set only by the workflow itself when it continues as new."""


class StartRollback(DomainModel):
    rollback_id: str
    """The workflow ID: the rollback batch's ID in the ledger, with ``#2``, ``#3``...
    for the second and later runs under the same ID."""
    run_id: str
    """The workflow's first run: a retried start finds the batch it made."""
    request: RollbackRequest


class RollbackLayout(DomainModel):
    """The rollback batch the workflow runs: its ledger ID and how it was cut."""

    batch_id: str
    layout: ChunkLayout
    nothing_to_undo: int
    """Chosen items with nothing to undo (not completed by the batch undone)."""


class RestoreChunkRequest(DomainModel):
    batch_id: str
    """The rollback batch."""
    rollback_of: str
    account_id: str
    chunk: int


class RestoreChunkFailure(DomainModel):
    chunk: RestoreChunkRequest
    error: str


class RestoreOutcome(ChunkOutcome):
    """What one restoring activity did."""

    calls_found_applied: int = 0
    """Insert calls a retry found already applied on Spotify, and did not send again."""
    replans: int = 0
    """Times a playlist was found changed by someone else, and its restoration planned
    again from what it had become."""


class NotRestoredExactly(DomainModel):
    """An item that is back, but not as it was: why."""

    key: str
    name: str
    why: str


class FinishRollback(DomainModel):
    batch_id: str
    rollback_of: str
    account_id: str
    status: BatchStatus
    started_at: datetime
    nothing_to_undo: int
    calls_found_applied: int
    replans: int
    schedule_paused: str | None = None


class RollbackState(BatchState):
    """The rollback workflow's state: a batch's, and what only a rollback counts."""

    rollback_of: str = ""
    nothing_to_undo: int = 0
    calls_found_applied: int = 0
    replans: int = 0
    schedule_paused: str | None = None
    """The account's schedule, paused so that its runs do not remove again what the
    rollback puts back; None when the account has none."""

    def count(self, outcome: ChunkOutcome) -> None:
        super().count(outcome)
        if isinstance(outcome, RestoreOutcome):
            self.calls_found_applied += outcome.calls_found_applied
            self.replans += outcome.replans


class RollbackProgress(DomainModel):
    """What the rollback's ``progress`` query answers."""

    batch_id: str
    rollback_of: str
    status: BatchStatus
    totals: dict[EntityType, int]
    tallies: dict[EntityType, ItemTally]
    chunks_total: int
    chunks_done: int
    api_calls: int
    started_at: datetime | None = None
    rate_limit_waits: int = 0
    rate_limit_wait_seconds: float = 0.0
    waiting_for: str | None = None


class RollbackSummary(DomainModel):
    """The rollback's result: stored with its batch in the ledger, and returned."""

    batch_id: str
    rollback_of: str
    account_id: str
    status: BatchStatus
    totals: dict[EntityType, int]
    """Items the rollback set out to restore, per entity type."""
    restored: dict[EntityType, int]
    failed: tuple[ItemError, ...] = ()
    """Compensations that failed for good, with why."""
    failed_omitted: int = 0
    skipped: tuple[SkipReason, ...] = ()
    """Why restores were skipped (the rollback was cancelled...), the most items first."""
    skipped_reasons_omitted: int = 0
    not_restored_exactly: tuple[NotRestoredExactly, ...] = ()
    """Back, but not as they were: liked songs whose date (and so place) was lost."""
    not_restored_exactly_omitted: int = 0
    nothing_to_undo: int = 0
    api_calls: int = 0
    """Requests that left for Spotify (``traffic.sent``)."""
    rate_limit_waits: int = 0
    """429 answers received."""
    rate_limit_wait_seconds: float = 0.0
    calls_found_applied: int = 0
    replans: int = 0
    duration_seconds: float = 0.0
    traffic: ApiTraffic = Field(default_factory=ApiTraffic)
    original_status: BatchStatus | None = None
    """The batch undone, after this rollback: rolled back, or partly rolled back (None
    when nothing of it is back)."""
    original_items_back: ItemsBack | None = None
    """The batch undone, after this rollback: how much of it is back."""
    schedule_paused: str | None = None
    """The account's schedule, paused by this rollback (or before it) so that its runs
    do not remove again what was put back; None when the account has none."""
