"""What a webhook's events may do, against a real `digest serve`: an address matches the
subscriber however the provider spells it; a signature is read strictly, so a captured
request altered in any way is refused; an event repeated without an id counts once."""

from __future__ import annotations

import time
import unicodedata
from dataclasses import replace

from tests.fakes import mailgun_post, postmark_post, sendgrid_post
from tests.test_webhooks import (
    MAILGUN_KEY,
    POSTMARK_AUTH,
    Served,
    mailgun_event,
    postmark_bounce,
    served,
)

__all__ = ["served"]  # the fixture, used here too


def test_an_event_names_a_subscriber_however_the_provider_spells_the_address(
    served: Served,
) -> None:
    composed = "josé@example.org"
    served.store.upsert_subscribers(
        [("anna@bücher.example", None, {}), (composed, None, {})], resubscribe=False
    )
    complaint = mailgun_event("Anna@xn--bcher-kva.example", "complained")
    assert served.post(mailgun_post(complaint, MAILGUN_KEY)).status_code == 200
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    bounce = postmark_post(postmark_bounce(decomposed, record_id=9), POSTMARK_AUTH)
    assert served.post(bounce).status_code == 200
    served.wait_for("anna@bücher.example", "complained")
    served.wait_for(composed, "bounced")


def test_a_sendgrid_signature_altered_in_any_way_is_refused(served: Served) -> None:
    events = [{"email": "ann@example.org", "event": "spamreport", "sg_event_id": "sg-x"}]
    genuine = sendgrid_post(events, served.sendgrid_private)
    header = "X-Twilio-Email-Event-Webhook-Signature"
    signature = genuine.headers[header]
    for altered in (signature + "!", signature[:10] + "." + signature[10:], "*" + signature,
                    signature.rstrip("=") if "=" in signature else signature + "=",
                    signature + "AA==", signature[:-2] + "x" + signature[-2:]):  # fmt: skip
        forged = replace(genuine, headers={**genuine.headers, header: altered})
        assert served.post(forged).status_code == 401, repr(altered)
    served.settle()
    assert served.status("ann@example.org") == "active" and served.event_count() == 0
    assert served.post(genuine).status_code == 200


def test_a_sendgrid_event_without_an_id_counts_once_however_often_it_is_posted(
    served: Served,
) -> None:
    soft = {"email": "bob@example.org", "event": "bounce", "type": "blocked",
            "reason": "421 try later", "timestamp": 1796000000}  # fmt: skip
    now = int(time.time())
    for i in range(4):  # each a new signed request carrying the same event
        again = sendgrid_post([soft], served.sendgrid_private, timestamp=now - i)
        assert served.post(again).status_code == 200
    no_time = {"email": "cy@example.org", "event": "bounce", "type": "blocked", "reason": "421"}
    for i in range(4):
        again = sendgrid_post([no_time], served.sendgrid_private, timestamp=now - i)
        assert served.post(again).status_code == 200
    served.settle()
    assert served.status("bob@example.org") == "active"  # one soft bounce, not four
    assert served.status("cy@example.org") == "active"
    assert [e.kind for e in served.store.events_for("bob@example.org")] == ["soft_bounce"]
    assert [e.kind for e in served.store.events_for("cy@example.org")] == ["soft_bounce"]
