"""The person's commands, one module per group, assembled into one app by ``starter.py``.

What the commands share lives in the private modules: ``_runtime`` (running a command,
its errors and its account), ``_output`` (``--format table|json|csv``) and ``_inputs``
(reading, parsing and looking up what a person pastes).
"""
