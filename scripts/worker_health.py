"""The worker container's healthcheck (docker-compose.yml): exit 0 once this host's
worker polls its task queue on Temporal, 1 otherwise, with the reason on stderr.

    python scripts/worker_health.py

Temporal is found as the worker finds it (``TEMPORAL_ADDRESS``, profiles), the queue is
the worker's (``ENFORCER_TASK_QUEUE``). A worker's identity is the SDK's ``PID@HOST``;
every container has a host name of its own, so a poller named ``...@`` this host is this
container's worker, however many workers are scaled beside it. Temporal keeps listing a
poller for a while after it stops: this says "registered", not "alive", which in a
container whose main process is the worker comes to the same thing.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.service import RPCError

from workflows.connection import TemporalUnreachable, configured_task_queue, connect_temporal


async def polling_identities(queue: str) -> list[str]:
    """The identities of the workflow pollers Temporal lists on ``queue``."""
    client = await connect_temporal()
    answer = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return [poller.identity for poller in answer.pollers]


def main() -> int:
    queue = configured_task_queue()
    host = socket.gethostname()
    try:
        identities = asyncio.run(polling_identities(queue))
    except (TemporalUnreachable, OSError) as error:
        print(f"unhealthy: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    except RPCError as error:  # Temporal answered, but not with the queue
        print(f"unhealthy: {error.status.name}: {error.message}", file=sys.stderr)
        return 1
    if any(identity.endswith(f"@{host}") for identity in identities):
        return 0
    print(f"unhealthy: no worker of host {host} polls task queue {queue}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Temporal's core can abort while the interpreter finalises (sdk-python #300).
    os._exit(code)
