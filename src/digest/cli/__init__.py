"""The command line: parse options, call the library, print, set the exit code.

One module per area, each adding its commands to the one group:
``compose`` (compose, render, check, preview, send --test), ``audience``
(subscribers), ``delivery`` (schedule, unschedule, deliver, status), ``events`` (events set aside) and
``web`` (serve), ``newsletters`` (which there are, who is on each) and ``desk`` (the editors' desk, its users and audit log).
Every DigestError becomes one line on stderr and exit status 1; no traceback.
"""

from __future__ import annotations

from digest.cli import api_tokens, audience, compose, delivery, desk, events, newsletters, web
from digest.cli.common import main

__all__ = [
    "api_tokens", "audience", "compose", "delivery", "desk", "events", "main", "newsletters",
    "web",
]  # fmt: skip
