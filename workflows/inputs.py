"""A workflow refuses an input it cannot use by failing at once, never by hanging.

Invariant: whatever a workflow of this project is started with (``temporal workflow start
--input``, another tool, a client of another version), it either runs with a valid
request or ends Failed within its first workflow task, the failure naming what is wrong.

Temporal's Python SDK decodes a workflow's input before any code of ours runs; a decode
failure fails the workflow *task*, which the server retries for ever, and the workflow
stays Running. Two things close that gap:

- ``INPUT_FAILURE_EXCEPTION_TYPES`` go to the worker's ``workflow_failure_exception_types``:
  the decoder's own error (pydantic's ``ValidationError``, which names each bad field and
  also covers text that is not JSON) then fails the workflow itself. Inside a workflow a
  ``ValidationError`` is otherwise only raised by building a model from bad data, which no
  retry of the task could mend either.
- ``WorkflowInputCheck`` catches what the decoder lets through: no input at all, or more
  inputs than the workflow takes (the SDK then decodes them untyped, as plain dicts).
"""

from __future__ import annotations

import typing
from typing import Any, Final

from pydantic import ValidationError
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

INPUT_FAILURE_EXCEPTION_TYPES: Final[tuple[type[BaseException], ...]] = (ValidationError,)
BAD_WORKFLOW_INPUT: Final = "BadWorkflowInput"
"""The failure type of a workflow refused for the number or kind of its inputs."""


def input_problem(workflow_type: str, expected: list[type], given: list[Any]) -> str | None:
    """What is wrong with ``given`` as the inputs of a workflow taking ``expected``."""
    wanted = ", ".join(kind.__name__ for kind in expected)
    takes = f"{workflow_type} takes {len(expected)} input ({wanted}, a JSON object)"
    if not given:
        return f"{takes}; it was started with no input"
    if len(given) != len(expected):
        return f"{takes}; it was started with {len(given)} inputs"
    for kind, value in zip(expected, given, strict=True):
        if not isinstance(value, kind):
            return f"{takes}; it was started with a {type(value).__name__}"
    return None


class _CheckedInbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        hints = typing.get_type_hints(input.run_fn)
        hints.pop("return", None)
        expected = [hint for hint in hints.values() if isinstance(hint, type)]
        problem = input_problem(input.type.__name__, expected, list(input.args))
        if problem is not None:
            raise ApplicationError(problem, type=BAD_WORKFLOW_INPUT, non_retryable=True)
        return await super().execute_workflow(input)


class WorkflowInputCheck(Interceptor):
    """Fails a workflow started with no input, or with more inputs than it takes."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _CheckedInbound
