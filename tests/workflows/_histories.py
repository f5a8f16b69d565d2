"""What a workflow's runs weigh in history: events per run, the largest event and payload.

Temporal fails a run at 51,200 events and a payload at 2 MiB, and warns at 512 KiB;
this project promises far less (under 10,000 events a run, no payload over 256 KiB).
These figures show how far inside a workflow stays.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client


@dataclass(frozen=True)
class RunWeight:
    run_id: str
    events: int
    largest_event_bytes: int
    """The largest event's encoded size: a bound for every payload it carries."""
    largest_payload_bytes: int
    continued_as: str | None
    """The run this one continued as new into, if it did."""


async def run_weights(client: Client, workflow_id: str, first_run_id: str) -> list[RunWeight]:
    """Every run of ``workflow_id`` from ``first_run_id`` on, following continue-as-new."""
    weights: list[RunWeight] = []
    run_id: str | None = first_run_id
    while run_id is not None:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        last = history.events[-1]
        continued_as = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            else None
        )
        weights.append(
            RunWeight(
                run_id=run_id,
                events=len(history.events),
                largest_event_bytes=max(event.ByteSize() for event in history.events),
                largest_payload_bytes=max(
                    (p.ByteSize() for event in history.events for p in _payloads(event)),
                    default=0,
                ),
                continued_as=continued_as,
            )
        )
        run_id = continued_as
    return weights


def _payloads(message: Message) -> Iterator[Payload]:
    """Every payload anywhere in ``message``: inputs, results, details, failures."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            values = value.values()
        elif field.is_repeated:
            values = value
        else:
            values = [value]
        for child in values:
            if isinstance(child, Message):
                yield from _payloads(child)
