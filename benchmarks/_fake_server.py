"""A fake provider in its own process, for benchmarks/deliver.py: its CPU is not the
measured process's, and it answers with TCP_NODELAY like a real API front end.

    python benchmarks/_fake_server.py mailgun|postmark|smtp

Prints one JSON line {"url", "key", "port"}; then reads commands on stdin, one a line:
"count" (prints {"delivered", "unique"}), "clear", "quit".
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes import FakeMailgun, FakePostmark


class FakeSmtp:
    """An aiosmtpd server on 127.0.0.1 that counts whom it accepted, keeping no bodies."""

    key = "none"

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.deliveries: list[str] = []
        fake = self

        class Counting:
            async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
                fake.deliveries.extend(envelope.rcpt_tos)
                return "250 OK"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Counting(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.url = f"smtp://127.0.0.1:{self.port}"

    def delivered_to(self) -> list[str]:
        return list(self.deliveries)

    def close(self) -> None:
        self.controller.stop()


def main() -> None:
    name = sys.argv[1]
    latency = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0  # seconds a request takes
    fake: Any
    if name == "smtp":
        fake = FakeSmtp()
    else:
        fake = FakeMailgun() if name == "mailgun" else FakePostmark()
        fake.keep_bodies = False
        fake.latency = latency
    port = getattr(fake, "port", 0)
    print(json.dumps({"url": fake.url, "key": fake.key, "port": port}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "count":
            emails = fake.delivered_to()
            print(json.dumps({"delivered": len(emails), "unique": len(set(emails))}), flush=True)
        elif command == "clear":
            fake.deliveries.clear()
            print("{}", flush=True)
        elif command == "quit":
            break
    fake.close()


if __name__ == "__main__":
    main()
