"""The person's commands, one module per group, assembled into one app by ``starter.py``.

What the commands share lives in the private modules: ``_runtime`` (running a command,
its errors, its exit codes and its account), ``_output`` (``--format table|json|csv``),
``_inputs`` (reading, parsing and looking up what a person pastes), ``_help`` (how
``--help`` shows a command), ``_batches``, ``_temporal`` and ``_waiting``. A command
module imports the private modules, never another command module's private names.
"""
