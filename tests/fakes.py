"""Fake mail provider APIs on 127.0.0.1, speaking each provider's documented contract.

Each fake checks requests the way the real API does (authentication, required fields,
batch limits, field types), answers with the documented bodies, and records what it
would deliver, after its own server-side substitution, in ``deliveries``. ``faults``
scripts the awkward answers: a status with headers and body, a delay, or a dropped
connection. The server is threaded, keeps connections alive and takes load, so the
delivery tests and the benchmark use it too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formataddr, getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs

Reply = tuple[int, dict[str, str], bytes]
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def address_part(value: str) -> str:
    match = re.search(r"<([^>]*)>\s*$", value)
    return (match.group(1) if match else value).strip()


def json_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(body).encode(),
    )


@dataclass
class Fault:
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0  # seconds before answering (or before dropping)
    drop: bool = False  # close the connection without answering
    after: bool = False  # process the request normally first, then drop (the answer is lost)


@dataclass
class Delivery:
    email: str
    message_id: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    metadata: dict[str, str] = field(default_factory=dict)  # tags, metadata, custom args


class FakeProvider:
    """The server part every fake shares; subclasses implement ``handle``."""

    def __init__(self, key: str = "test-key") -> None:
        self.key = key
        self.deliveries: list[Delivery] = []
        self.arrivals: list[float] = []
        self.refused: list[str] = []  # addresses answered as inactive/suppressed
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.faults: deque[Fault] = deque()
        self.lock = threading.Lock()
        self.keep_bodies = True  # the benchmark turns this off to keep memory flat
        self.latency = 0.0  # seconds every request takes, to give other things time to happen
        self.on_request: Callable[[int], None] | None = None  # called with the request count
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # TCP_NODELAY, as real API front ends answer

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake.lock:
                    fake.requests.append(("POST", self.path, headers))
                    fault = fake.faults.popleft() if fake.faults else None
                    count = len(fake.requests)
                if fake.on_request is not None:
                    fake.on_request(count)
                if fake.latency:
                    time.sleep(fake.latency)
                if fault and fault.delay:
                    time.sleep(fault.delay)
                if fault and fault.drop and not fault.after:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault and not fault.drop:
                    reply: Reply = (fault.status, fault.headers, fault.body)
                else:
                    with fake.lock:
                        reply = fake.handle(self.path, headers, body)
                if fault and fault.drop:  # processed, but the answer never arrives
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                status, reply_headers, data = reply
                try:
                    self.send_response(status)
                    for key, value in reply_headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.request_queue_size = 128
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        raise NotImplementedError

    def deliver(self, delivery: Delivery) -> None:
        if not self.keep_bodies:
            delivery = Delivery(delivery.email, delivery.message_id, "", "", "", {})
        self.deliveries.append(delivery)
        self.arrivals.append(time.monotonic())  # when each message reached the provider

    def delivered_to(self) -> list[str]:
        return [d.email for d in self.deliveries]


class FakePostmark(FakeProvider):
    """Postmark: /email and /email/batch; per-item ErrorCode in a 200 batch answer."""

    TEST_TOKEN = "POSTMARK_API_TEST"

    def __init__(
        self, key: str = "test-key", streams: tuple[str, ...] = ("outbound", "broadcast")
    ) -> None:
        super().__init__(key)
        self.inactive: set[str] = set()
        self.streams = streams
        self.test_accepted = 0

    def _one(self, message: Any, test: bool) -> dict[str, Any]:
        if not isinstance(message, dict):
            return {"ErrorCode": 300, "Message": "Invalid message: not an object."}
        for name in ("From", "To", "Subject"):
            if not isinstance(message.get(name), str) or not message[name]:
                return {"ErrorCode": 300, "Message": f"Invalid '{name}' field."}
        if not (message.get("HtmlBody") or message.get("TextBody")):
            return {
                "ErrorCode": 300,
                "Message": "Provide either email TextBody or HtmlBody or both.",
            }
        stream = message.get("MessageStream", "outbound")
        if stream not in self.streams:
            return {
                "ErrorCode": 1235,
                "Message": f"The message stream for the provided 'ID' was not found: {stream}",
            }
        headers = message.get("Headers", [])
        if not isinstance(headers, list) or not all(
            isinstance(h, dict)
            and isinstance(h.get("Name"), str)
            and isinstance(h.get("Value"), str)
            for h in headers
        ):
            return {"ErrorCode": 300, "Message": "Invalid 'Headers' field."}
        to = address_part(message["To"])
        if not EMAIL.match(to):
            return {
                "ErrorCode": 300,
                "Message": f"Error parsing 'To': Illegal email address '{to}'. It must contain the '@' symbol.",
            }
        if to.lower() in self.inactive:
            self.refused.append(to.lower())
            return {
                "ErrorCode": 406,
                "Message": "You tried to send to recipient(s) that have been marked as inactive. Found inactive "
                f"addresses: {to}. Inactive recipients are ones that have generated a hard bounce, a spam "
                "complaint, or a manual suppression.",
            }
        message_id = str(uuid.uuid4())
        if test:
            self.test_accepted += 1
        else:
            self.deliver(
                Delivery(to, message_id, message["Subject"], message.get("HtmlBody", ""), message.get("TextBody", ""),
                         {h["Name"]: h["Value"] for h in headers},
                         {"tag": message.get("Tag", ""), **(message.get("Metadata") or {})})
            )  # fmt: skip
        return {
            "To": message["To"],
            "SubmittedAt": "2026-11-28T10:00:00Z",
            "MessageID": message_id,
            "ErrorCode": 0,
            "Message": "OK",
        }

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        token = headers.get("x-postmark-server-token")
        if token not in (self.key, self.TEST_TOKEN):
            return json_reply(
                401,
                {
                    "ErrorCode": 10,
                    "Message": "The Server Token you provided in the X-Postmark-Server-Token request header was invalid.",
                },
            )
        test = token == self.TEST_TOKEN
        try:
            payload = json.loads(body)
        except ValueError:
            return json_reply(422, {"ErrorCode": 402, "Message": "Received invalid JSON input."})
        if path == "/email":
            result = self._one(payload, test)
            return json_reply(200 if result["ErrorCode"] == 0 else 422, result)
        if path == "/email/batch":
            if not isinstance(payload, list):
                return json_reply(
                    422, {"ErrorCode": 402, "Message": "Received invalid JSON input."}
                )
            if len(payload) > 500:
                return json_reply(
                    422,
                    {"ErrorCode": 300, "Message": "Batch size exceeds the limit of 500 messages."},
                )
            return json_reply(200, [self._one(m, test) for m in payload])
        return json_reply(404, {"ErrorCode": 404, "Message": "Not found"})


class FakeSendGrid(FakeProvider):
    """SendGrid v3 mail/send: 202 with no body; substitutions applied per personalization."""

    def __init__(self, key: str = "test-key", max_body: int = 30 * 1024 * 1024) -> None:
        super().__init__(key)
        self.max_body = max_body

    @staticmethod
    def _error(message: str, field_name: str | None) -> Reply:
        return json_reply(
            400, {"errors": [{"message": message, "field": field_name, "help": None}]}
        )

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if headers.get("authorization") != f"Bearer {self.key}":
            return json_reply(
                401,
                {
                    "errors": [
                        {
                            "message": "The provided authorization grant is invalid, expired, or revoked",
                            "field": None,
                            "help": None,
                        }
                    ]
                },
            )
        if path != "/v3/mail/send":
            return json_reply(
                404, {"errors": [{"message": "not found", "field": None, "help": None}]}
            )
        if len(body) > self.max_body:
            page = b"<html><head><title>413 Request Entity Too Large</title></head><body><h1>413 Request Entity Too Large</h1></body></html>"
            return 413, {"Content-Type": "text/html"}, page
        try:
            payload = json.loads(body)
        except ValueError:
            return self._error("Invalid JSON", None)
        people = payload.get("personalizations")
        if not isinstance(people, list) or not people:
            return self._error(
                "The personalizations field is required and must have at least one personalization.",
                "personalizations",
            )
        if len(people) > 1000:
            return self._error(
                "The personalizations field cannot have more than 1000 items.", "personalizations"
            )
        if not isinstance(payload.get("from"), dict) or not EMAIL.match(
            payload["from"].get("email", "")
        ):
            return self._error("The from object must be provided for every email send.", "from")
        if not payload.get("subject"):
            return self._error("The subject is required.", "subject")
        content = payload.get("content") or []
        if not content or any(
            not isinstance(c.get("value"), str) or not c.get("value") for c in content
        ):
            return self._error(
                "The content value must be a string at least one character in length.", "content"
            )
        for key, value in (payload.get("custom_args") or {}).items():
            if not isinstance(value, str):
                return self._error(f"Custom args values must be strings ({key}).", "custom_args")
        errors = []
        for i, person in enumerate(people):
            for j, to in enumerate(person.get("to") or []):
                if not EMAIL.match(to.get("email", "")):
                    errors.append(
                        {
                            "message": "Does not contain a valid address.",
                            "field": f"personalizations.{i}.to.{j}.email",
                            "help": None,
                        }
                    )
            for key, value in (person.get("headers") or {}).items():
                if not isinstance(value, str):
                    errors.append(
                        {
                            "message": "Invalid type. Expected: string",
                            "field": f"personalizations.{i}.headers.{key}",
                            "help": None,
                        }
                    )
        if errors:
            return json_reply(400, {"errors": errors})
        if (payload.get("mail_settings") or {}).get("sandbox_mode", {}).get("enable"):
            return 200, {}, b""
        message_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        by_type = {c["type"]: c["value"] for c in content}
        for person in people:
            subs = person.get("substitutions") or {}

            def fill(text: str, subs: dict[str, str] = subs) -> str:
                for key, value in subs.items():
                    text = text.replace(key, value)
                return text

            for to in person["to"]:
                if not self.keep_bodies:
                    self.deliver(Delivery(to["email"], message_id, "", "", "", {}))
                    continue
                self.deliver(
                    Delivery(to["email"], message_id, fill(person.get("subject") or payload["subject"]),
                             fill(by_type.get("text/html", "")), fill(by_type.get("text/plain", "")),
                             {**payload.get("headers", {}), **person.get("headers", {})},
                             {**payload.get("custom_args", {}), **person.get("custom_args", {}),
                              "tag": ",".join(payload.get("categories", []))})
                )  # fmt: skip
        return 202, {"X-Message-Id": message_id}, b""


def multipart_form(content_type: str, body: bytes) -> dict[str, list[str]]:
    """The fields of a multipart/form-data body (RFC 7578), as parse_qs gives them."""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    if boundary is None:
        return {}
    form: dict[str, list[str]] = {}
    for part in body.split(b"--" + boundary.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        head, _, value = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if name:
            form.setdefault(name.group(1).decode(), []).append(value[:-2].decode("utf-8"))
    return form


class FakeMailgun(FakeProvider):
    """Mailgun messages API: form fields, recipient-variables, one id per call."""

    def __init__(self, key: str = "test-key", domain: str = "mg.example.org") -> None:
        super().__init__(key)
        self.domain = domain
        self.testmode_accepted = 0

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        expected = "Basic " + base64.b64encode(f"api:{self.key}".encode()).decode()
        if headers.get("authorization") != expected:
            return 401, {"Content-Type": "text/plain"}, b"Forbidden"
        match = re.fullmatch(r"/v3/([^/]+)/messages", path)
        if not match:
            return json_reply(404, {"message": "Not Found"})
        if match.group(1) != self.domain:
            return json_reply(404, {"message": f"Domain not found: {match.group(1)}"})
        content_type = headers.get("content-type", "")
        if "application/x-www-form-urlencoded" in content_type:
            form = parse_qs(body.decode(), keep_blank_values=True)
        elif "multipart/form-data" in content_type:
            form = multipart_form(content_type, body)
        else:
            return json_reply(400, {"message": "unsupported content type"})
        for name in ("from", "to", "subject"):
            if not form.get(name):
                return json_reply(400, {"message": f"'{name}' parameter is missing"})
        if not (form.get("text") or form.get("html")):
            return json_reply(
                400, {"message": "Need at least one of 'text' or 'html' parameters specified"}
            )
        # each "to" field may hold several addresses separated by commas
        recipients = [formataddr(pair) for pair in getaddresses(form["to"])]
        if len(recipients) > 1000:
            return json_reply(
                400, {"message": "'to' parameter can't contain more than 1000 recipients"}
            )
        if any(not EMAIL.match(address_part(r)) for r in recipients):
            return json_reply(
                400,
                {"message": "'to' parameter is not a valid address. please check documentation"},
            )
        try:
            variables = json.loads(form.get("recipient-variables", ["{}"])[0])
        except ValueError:
            return json_reply(400, {"message": "recipient-variables parameter is not a valid JSON"})
        message_id = f"<{uuid.uuid4().hex}@{self.domain}>"
        if form.get("o:testmode", ["no"])[0] == "yes":
            self.testmode_accepted += len(recipients)
            return json_reply(200, {"id": message_id, "message": "Queued. Thank you."})
        html, text, subject = (
            form.get("html", [""])[0],
            form.get("text", [""])[0],
            form["subject"][0],
        )
        header_fields = {k[2:]: v[0] for k, v in form.items() if k.startswith("h:")}
        for recipient in recipients:
            address = address_part(recipient)
            if not self.keep_bodies:
                self.deliver(Delivery(address, message_id, "", "", "", {}))
                continue
            values = variables.get(address, {})

            def fill(value: str, values: dict[str, Any] = values) -> str:
                return re.sub(
                    r"%recipient\.([A-Za-z0-9_]+)%",
                    lambda m: str(values.get(m.group(1), m.group(0))),
                    value,
                )

            self.deliver(
                Delivery(
                    address,
                    message_id,
                    fill(subject),
                    fill(html),
                    fill(text),
                    {k: fill(v) for k, v in header_fields.items()},
                    {
                        "tag": ",".join(form.get("o:tag", [])),
                        **{k[2:]: v[0] for k, v in form.items() if k.startswith("v:")},
                    },
                )
            )
        return json_reply(200, {"id": message_id, "message": "Queued. Thank you."})


class FakeResend(FakeProvider):
    """Resend: /emails and /emails/batch with Idempotency-Key replays."""

    def __init__(self, key: str = "re_test_key") -> None:
        super().__init__(key)
        self.idempotent: dict[str, tuple[str, Reply]] = {}

    @staticmethod
    def _invalid(message: str) -> Reply:
        return json_reply(422, {"statusCode": 422, "name": "validation_error", "message": message})

    def _check(self, email: Any) -> str | None:
        if not isinstance(email, dict):
            return "Invalid email object"
        for name in ("from", "to", "subject"):
            if not email.get(name):
                return f"Missing `{name}` field."
        to = email["to"] if isinstance(email["to"], list) else [email["to"]]
        if len(to) > 50:
            return "The `to` field must contain at most 50 addresses."
        for address in to:
            if not EMAIL.match(address_part(str(address))):
                return "Invalid `to` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format."
        if not (email.get("html") or email.get("text")):
            return "Missing `html` or `text` field."
        headers = email.get("headers") or {}
        if not all(isinstance(v, str) for v in headers.values()):
            return "Header values must be strings."
        for tag in email.get("tags") or []:
            if not all(
                re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(tag.get(k, "")))
                for k in ("name", "value")
            ):
                return "Tags should only contain ASCII letters, numbers, underscores, or dashes."
        return None

    def _deliver(self, email: dict[str, Any]) -> str:
        message_id = str(uuid.uuid4())
        to = email["to"] if isinstance(email["to"], list) else [email["to"]]
        for address in to:
            self.deliver(
                Delivery(
                    address_part(address),
                    message_id,
                    email["subject"],
                    email.get("html", ""),
                    email.get("text", ""),
                    email.get("headers") or {},
                    {t["name"]: t["value"] for t in email.get("tags") or []},
                )
            )
        return message_id

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if headers.get("authorization") != f"Bearer {self.key}":
            return json_reply(
                401,
                {
                    "statusCode": 401,
                    "name": "missing_api_key",
                    "message": "Missing API key in the authorization header.",
                },
            )
        key = headers.get("idempotency-key")
        fingerprint = hashlib.sha256(path.encode() + body).hexdigest()
        if key:
            if len(key) > 256:
                return self._invalid("Idempotency key must be at most 256 characters.")
            if key in self.idempotent:
                seen, reply = self.idempotent[key]
                if seen != fingerprint:
                    return json_reply(
                        409,
                        {
                            "statusCode": 409,
                            "name": "invalid_idempotent_request",
                            "message": "Same idempotency key used with a different request payload.",
                        },
                    )
                return reply
        try:
            payload = json.loads(body)
        except ValueError:
            return self._invalid("Invalid JSON body.")
        if path == "/emails":
            if problem := self._check(payload):
                return self._invalid(problem)
            reply = json_reply(200, {"id": self._deliver(payload)})
        elif path == "/emails/batch":
            if not isinstance(payload, list) or not payload:
                return self._invalid("The batch must be a non-empty array.")
            if len(payload) > 100:
                return self._invalid("The batch must contain at most 100 emails.")
            for email in payload:
                if problem := self._check(email):
                    return self._invalid(problem)
            reply = json_reply(200, {"data": [{"id": self._deliver(e)} for e in payload]})
        else:
            return json_reply(404, {"statusCode": 404, "name": "not_found", "message": "Not found"})
        if key:
            self.idempotent[key] = (fingerprint, reply)
        return reply


# --- Webhook senders: events signed exactly as each provider signs them ----------------


@dataclass
class SignedPost:
    path: str
    headers: dict[str, str]
    body: bytes


def postmark_post(record: dict[str, Any], credentials: str, path: str = "postmark") -> SignedPost:
    """Postmark: basic-auth credentials from the webhook URL, one JSON record."""
    import base64

    auth = base64.b64encode(credentials.encode()).decode()
    return SignedPost(
        f"/webhooks/{path}",
        {"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
        json.dumps(record).encode(),
    )


def mailgun_post(
    event: dict[str, Any], key: str, *, timestamp: int | None = None, token: str | None = None
) -> SignedPost:
    """Mailgun: hex HMAC-SHA256 of timestamp + token under the signing key."""
    import hashlib
    import hmac
    import time

    stamp = str(int(time.time()) if timestamp is None else timestamp)
    token = token or uuid.uuid4().hex
    signature = hmac.new(key.encode(), f"{stamp}{token}".encode(), hashlib.sha256).hexdigest()
    body = {
        "signature": {"timestamp": stamp, "token": token, "signature": signature},
        "event-data": event,
    }
    return SignedPost(
        "/webhooks/mailgun", {"Content-Type": "application/json"}, json.dumps(body).encode()
    )


def sendgrid_keys() -> tuple[Any, str]:
    """A P-256 key pair: the private key (the fake's) and the base64 DER public key
    (what SendGrid shows as the verification key)."""
    import base64

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(public).decode()


def sendgrid_post(
    events: list[dict[str, Any]], private: Any, *, timestamp: int | None = None
) -> SignedPost:
    """SendGrid: ECDSA P-256/SHA-256 over timestamp + raw body, base64 DER signature."""
    import base64
    import time

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    stamp = str(int(time.time()) if timestamp is None else timestamp)
    body = json.dumps(events).encode()
    signature = private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return SignedPost(
        "/webhooks/sendgrid",
        {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        },
        body,
    )


def resend_post(
    payload: dict[str, Any],
    secret: str,
    *,
    timestamp: int | None = None,
    message_id: str | None = None,
) -> SignedPost:
    """Resend (Svix): base64 HMAC-SHA256 of "id.timestamp.body" under the whsec_ secret."""
    import base64
    import hashlib
    import hmac
    import time

    stamp = str(int(time.time()) if timestamp is None else timestamp)
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    body = json.dumps(payload).encode()
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{stamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return SignedPost(
        "/webhooks/resend",
        {
            "Content-Type": "application/json",
            "svix-id": message_id,
            "svix-timestamp": stamp,
            "svix-signature": f"v1,{signature}",
        },
        body,
    )
