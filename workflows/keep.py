"""KeepEnforcedWorkflow: one run of an account's schedule (``keep/{account}``).

It reads as the person's wish "keep my library obeying my blocklist": wait until the
blocklist has settled, plan (the ordinary ``PlanningWorkflow``, under its ordinary ID,
so a ``starter.py plan`` of the same account and options joins it), and when the plan
has actions, enforce it as the ordinary batch (``EnforcementWorkflow``, ID
``enforce/{account}/{plan}``). Then it says what it removed, by kind and by artist.

Invariants:
- A run adds no machinery of its own to a batch: the batch is an ordinary enforcement
  (same ledger record, same rollback, same idempotency by plan ID: a plan that has a
  batch already is not enforced twice), and it writes only in its account's turn.
- A plan with nothing to do leaves no batch behind.
- A run ends only when the blocklist is the one it last planned with (or after
  ``MOST_ROUNDS`` plans): a change made while it ran, whose trigger the schedule's
  overlap policy (skip) absorbed, is enforced by this run rather than left for the next.
- Only IDs, counts and a hash of the blocklist cross Temporal.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ParentClosePolicy

from workflows.policies import LEDGER_RETRY

with workflow.unsafe.imports_passed_through():
    from activities.keep import KeepActivities
    from enforcer.models import (
        BatchStatus,
        BlocklistState,
        EnforcementRequest,
        KeepRequest,
        KeepRunSummary,
        KeptBatch,
        PlanRequest,
        PlanResult,
    )
    from workflows.enforcement import EnforcementWorkflow, enforcement_workflow_id
    from workflows.planning import PlanningWorkflow, planning_workflow_id
    from workflows.search_attributes import new_batch_attributes

MOST_ROUNDS: Final = 5
"""Plans one run makes at most when the blocklist keeps changing; the next run goes on."""
MOST_SETTLE_WAITS: Final = 12
"""Settle periods a run waits at most for a blocklist that keeps changing."""
PLANNING_BUSY_WAIT: Final = timedelta(seconds=5)
"""How often a run asks again while a planning of the same account and options runs."""
PLANNING_BUSY_LIMIT: Final = timedelta(minutes=15)
"""A run gives way (fails, the next one tries again) after waiting this long for it."""


@workflow.defn
class KeepEnforcedWorkflow:
    def __init__(self) -> None:
        self._summary = KeepRunSummary()

    @workflow.run
    async def run(self, request: KeepRequest) -> KeepRunSummary:
        self._request = request
        self._label = request.account_label or request.account_id
        state = await self._blocklist()
        rounds = 0
        while state.artists and rounds < MOST_ROUNDS:
            rounds += 1
            state = await self._settled(state)
            if not state.artists:
                break
            plan = await self._plan()
            planned_with, state = state, await self._blocklist()
            if state != planned_with:
                # The plan is out of date already: make the next one, if the run may.
                self._summary = self._summary.model_copy(update={"outpaced": True})
                continue
            self._summary = self._summary.model_copy(update={"outpaced": False})
            if sum(plan.counts.actions.values()) == 0:
                break  # nothing to do: no batch
            await self._enforce(plan)
            planned_with, state = state, await self._blocklist()
            if state == planned_with:
                break
        self._show(self._words())
        return self._summary

    @workflow.query
    def summary(self) -> KeepRunSummary:
        return self._summary

    async def _blocklist(self) -> BlocklistState:
        return await workflow.execute_activity_method(
            KeepActivities.blocklist_state,
            self._request.account_id,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=LEDGER_RETRY,
        )

    async def _settled(self, state: BlocklistState) -> BlocklistState:
        """The blocklist once it has stayed the same for ``settle_seconds``: additions
        made one after another are planned together."""
        settle = timedelta(seconds=self._request.settle_seconds)
        if not settle:
            return state
        for _ in range(MOST_SETTLE_WAITS):
            self._show(f"waiting {settle.total_seconds():g} s for the blocklist to settle")
            await workflow.sleep(settle)
            now = await self._blocklist()
            if now == state:
                break
            state = now
        return state

    async def _plan(self) -> PlanResult:
        """The plan, from a child ``PlanningWorkflow`` under its ordinary ID; while a
        planning of that ID runs (a person's ``plan``), this run waits for it to end."""
        request = self._request
        planning_id = planning_workflow_id(self._label, request.options)
        waited = timedelta(0)
        while True:
            self._show(f"planning ({planning_id})")
            try:
                handle = await workflow.start_child_workflow(
                    PlanningWorkflow.run,
                    PlanRequest(account_id=request.account_id, options=request.options),
                    id=planning_id,
                    parent_close_policy=ParentClosePolicy.ABANDON,
                )
                break
            except WorkflowAlreadyStartedError:
                if waited >= PLANNING_BUSY_LIMIT:
                    raise ApplicationError(
                        f"the planning {planning_id} has been running for "
                        f"{PLANNING_BUSY_LIMIT} and this run gave way: the next one tries again",
                        non_retryable=True,
                    ) from None
                self._show(f"waiting for the planning {planning_id} that is running already")
                await workflow.sleep(PLANNING_BUSY_WAIT)
                waited += PLANNING_BUSY_WAIT
        plan = await handle
        self._summary = self._summary.model_copy(
            update={"plan_id": plan.plan_id, "plans_made": self._summary.plans_made + 1}
        )
        return plan

    async def _enforce(self, plan: PlanResult) -> None:
        """The plan's ordinary batch; a plan that has one already is not enforced again."""
        request = self._request
        batch_id = enforcement_workflow_id(self._label, plan.plan_id)
        changes = sum(plan.counts.actions.values())
        self._show(f"enforcing plan {plan.plan_id} as batch {batch_id}: {changes} changes")
        try:
            summary = await workflow.execute_child_workflow(
                EnforcementWorkflow.run,
                EnforcementRequest(
                    account_id=request.account_id,
                    plan_id=plan.plan_id,
                    account_label=request.account_label,
                    max_in_flight=request.max_in_flight,
                ),
                id=batch_id,
                # Ended: refused, as `starter.py enforce` refuses it (idempotent by plan).
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                # A batch outlives a run that is terminated: it ends in its own time.
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=(
                    f"Scheduled enforcement of plan {plan.plan_id} for account "
                    f"{self._label}: {changes} changes"
                ),
                search_attributes=new_batch_attributes(self._label),
            )
        except WorkflowAlreadyStartedError:
            self._summary = self._summary.model_copy(update={"already_enforced_as": batch_id})
            return
        except ChildWorkflowError as error:
            if not isinstance(error.cause, CancelledError):
                raise
            # A person cancelled the batch: it ended Canceled, its ledger final.
            status = BatchStatus.CANCELLED
        else:
            status = summary.status
        removed = await workflow.execute_activity_method(
            KeepActivities.removed_counts,
            batch_id,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=LEDGER_RETRY,
        )
        kept = KeptBatch(batch_id=batch_id, plan_id=plan.plan_id, status=status, removed=removed)
        self._summary = self._summary.model_copy(
            update={"batches": (*self._summary.batches, kept), "already_enforced_as": None}
        )

    def _words(self) -> str:
        """The run's outcome in a line: the Web UI's details, ``schedule show``."""
        return run_outcome(self._summary)

    def _show(self, text: str) -> None:
        workflow.set_current_details(text)


def run_outcome(summary: KeepRunSummary) -> str:
    """What a run did, in a line: what it removed by artist, or why nothing."""
    if summary.plan_id is None:
        return "nothing to do: the blocklist is empty"
    if not summary.batches:
        if summary.outpaced:
            return (
                f"nothing done: the blocklist changed after each of {summary.plans_made} "
                "plans; the next run goes on"
            )
        if summary.already_enforced_as is not None:
            return (
                f"nothing to do: plan {summary.plan_id} was enforced as "
                f"{summary.already_enforced_as}"
            )
        return f"nothing to do: the library obeys the blocklist (plan {summary.plan_id})"
    removed = summary.removed()
    total = sum(removed.by_kind.values())
    artists = ", ".join(
        f"{artist} {count}"
        for artist, count in sorted(removed.by_artist.items(), key=lambda pair: (-pair[1], pair[0]))
    )
    batches = ", ".join(f"{batch.batch_id} ({batch.status.value})" for batch in summary.batches)
    return f"removed {total}" + (f" ({artists})" if artists else "") + f" in {batches}"
