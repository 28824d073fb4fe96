"""The measured process of benchmarks/deliver.py: one `deliver` pass, or the baseline.

Prints one JSON line: seconds, peak RSS, and (deliver) how many times the issue was
rendered.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import smtplib
import sys
import threading
import time
from pathlib import Path
from typing import Any

import digest.build
import digest.render
from digest.config import Settings
from digest.delivery import QuietProgress, deliver_due
from digest.providers import Batch, create_provider, make_http_client
from digest.render import RenderedIssue
from digest.render.message import Recipient, personalise, to_email
from digest.schedule import rendered_from_json
from digest.store.sqlite import SQLiteStore
from digest.tokens import make_token

renders = 0
original = digest.render.render_issue


def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
    global renders
    renders += 1
    return original(*args, **kwargs)


digest.render.render_issue = counted  # type: ignore[assignment]
digest.build.render_issue = counted  # type: ignore[assignment]

if os.environ.get("BENCH_SMTP_PER_BATCH"):  # measure what per-message records cost
    import digest.providers.smtp

    digest.providers.smtp.Smtp.reports_each = False


def deliver(folder: Path, settings: Settings) -> dict[str, float]:
    store = SQLiteStore(settings.delivery.database)
    started, cpu = time.monotonic(), time.process_time()
    with make_http_client(settings) as client:
        reports = deliver_due(store, settings, client=client, progress=QuietProgress())
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    assert reports and reports[0].ok, reports
    return {"seconds": seconds, "cpu_seconds": cpu, "renders": renders}


def smtp_baseline(settings: Settings, rendered: RenderedIssue, total: int) -> dict[str, float]:
    """A plain smtplib loop: one prebuilt message, 100 recipients per connection."""
    message = to_email(
        personalise(rendered, Recipient("base@example.org")), date=dt.datetime.now(dt.UTC)
    )
    data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    sender = message["From"]
    starts = list(range(0, total, 100))

    def connection(share: list[int]) -> None:
        for start in share:
            with smtplib.SMTP(settings.provider.smtp.host, settings.provider.smtp.port) as client:
                for i in range(start, min(total, start + 100)):
                    client.sendmail(sender, [f"reader{i:07d}@example.org"], data)

    return timed_threads(connection, starts, settings.delivery.concurrency)


def timed_threads(work: Any, items: list[Any], workers: int) -> dict[str, float]:
    """Run ``work`` over ``items`` split between ``workers`` threads (the concurrency
    digest uses); wall and CPU seconds."""
    shares = [items[i::workers] for i in range(workers)]
    threads = [threading.Thread(target=work, args=(share,)) for share in shares]
    started, cpu = time.monotonic(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"seconds": time.monotonic() - started, "cpu_seconds": time.process_time() - cpu}


def baseline(folder: Path, settings: Settings) -> dict[str, float]:
    """A plain loop: the same batch payload, built once, posted as many times as needed."""
    store = SQLiteStore(settings.delivery.database)
    (issue,) = store.list_schedules()
    total = sum(store.count_subscribers().values())
    rendered = rendered_from_json(issue.rendered_json)
    if settings.provider.name == "smtp":
        return smtp_baseline(settings, rendered, total)
    key = os.environ["DIGEST_BENCH_SIGNING_KEY"].encode()
    list_id = store.list_identity()
    with make_http_client(settings) as client:
        provider = create_provider(settings, client)
        size = provider.batch_size
        # the first batch's real recipients and tokens: the same bytes digest sends
        people = tuple(
            Recipient(f"reader{i:07d}@example.org", f"Reader {i}",
                      make_token(key, list_id, f"u{i:015d}"))
            for i in range(size)
        )  # fmt: skip
        request = provider.request(Batch(rendered, people))  # type: ignore[attr-defined]
        options = {
            k: v for k, v in request.items() if k in ("json", "data", "files", "content", "headers")
        }
        if options.get("content") is not None and not isinstance(options["content"], bytes):
            options["content"] = b"".join(options["content"])
        built = client.build_request(request["method"], request["url"], **options)
        if "auth" in request:
            user, password = request["auth"]
            built.headers["Authorization"] = (
                "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            )
        body = built.read()
        headers = dict(built.headers)

        def post(share: list[int]) -> None:
            for _ in share:
                response = client.post(request["url"], content=body, headers=headers)
                assert response.status_code == 200, response.text[:200]

        return timed_threads(post, list(range(0, total, size)), settings.delivery.concurrency)


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). Unlike ru_maxrss it does not count the pages
    of the parent that were shared with this process between fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    mode, folder = sys.argv[1], Path(sys.argv[2])
    settings = Settings.model_validate_json((folder / "settings.json").read_text())
    result = deliver(folder, settings) if mode == "deliver" else baseline(folder, settings)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
