"""SMTP with the standard library: STARTTLS (port 587), implicit TLS (465) or none.

One connection per batch; each recipient gets its own message, and its outcome is
reported the moment the server answers (``Batch.on_outcome``), so delivery records it
before the next message goes: a crash leaves at most the message in progress unknown.
Only a refusal of the recipient is a bounce of that person: a 5xx answer to RCPT TO whose
enhanced status code (RFC 3463) is about the address or the mailbox (5.1.x, 5.2.x), or,
without one, a mailbox reply (550-553). A permanent refusal of the sender (MAIL FROM), of
the message (DATA) or of the session (relaying denied, 5.7.x, routing) would refuse
everyone alike: it stops the batch and the issue with the relay's answer, and suppresses
no one. 4xx replies and dropped connections are worth another try.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import smtplib
import ssl

import httpx

from digest.config import Settings
from digest.errors import ConfigError, ProviderAuthError
from digest.providers.base import ACCEPTED, FAILED, REJECTED, Batch, Outcome, Provider, all_failed
from digest.render.message import message_id, personalise, to_email


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


_ENHANCED = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
MAILBOX_REPLIES = frozenset({550, 551, 552, 553})  # RFC 5321: the mailbox, not the mail


def refuses_recipient(code: int, text: str) -> bool:
    """Whether a permanent answer to RCPT TO is about that recipient (a bounce), rather
    than about the sender, the relay or the session."""
    enhanced = _ENHANCED.match(text)
    if enhanced:
        return enhanced.group(2) in ("1", "2")  # addressing status, mailbox status
    return code in MAILBOX_REPLIES


class Smtp(Provider):
    name = "smtp"
    max_batch = 100
    reports_each = True

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.smtp = self.settings.smtp
        self.password: str | None = None
        if self.smtp.username:
            env = self.smtp.password_env
            if not env or not os.environ.get(env):
                raise ConfigError(
                    f"provider.smtp.password_env: set it to the environment variable holding the "
                    f"password for {self.smtp.username} ({env or 'none named'} is not set)"
                )
            self.password = os.environ[env]

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.smtp.ca_file)

    def _connect(self) -> smtplib.SMTP:
        timeout = self.settings.timeout
        if self.smtp.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.smtp.host, self.smtp.port, timeout=timeout, context=self._context()
            )
        else:
            client = smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=timeout)
            if self.smtp.security == "starttls":
                client.starttls(context=self._context())
        if self.smtp.username and self.password is not None:
            client.login(self.smtp.username, self.password)
        return client

    def send(self, batch: Batch) -> list[Outcome]:
        where = f"smtp {self.smtp.host}:{self.smtp.port}"
        try:
            client = self._connect()
        except smtplib.SMTPAuthenticationError:
            raise ProviderAuthError(
                f"{where} refused the login for {self.smtp.username}: check the password in "
                f"environment variable {self.smtp.password_env}"
            ) from None
        except (OSError, smtplib.SMTPException) as err:
            return all_failed(batch, f"{where}: cannot connect ({err})", retryable=True)
        outcomes: list[Outcome] = []
        now = dt.datetime.now(dt.UTC)
        try:
            for index, recipient in enumerate(batch.recipients):
                message = personalise(
                    batch.rendered,
                    recipient,
                    subject_prefix=batch.subject_prefix,
                    key=batch.message_key,
                )
                mail = to_email(message, date=now)
                halted: str | None = None
                try:
                    client.send_message(
                        mail, from_addr=self.smtp.envelope_sender, to_addrs=[recipient.email]
                    )
                except smtplib.SMTPRecipientsRefused as err:
                    code, answer = next(iter(err.recipients.values()))
                    text = _text(answer)
                    reason = f"smtp {code}: {text}"
                    if 400 <= code < 500:
                        outcome = Outcome(recipient.email, FAILED, reason=reason, retryable=True)
                    elif refuses_recipient(code, text):
                        outcome = Outcome(recipient.email, REJECTED, reason=reason)
                    else:
                        halted = f"{where} refused RCPT TO, not for the address: {code} {text}"
                except smtplib.SMTPServerDisconnected:
                    # this message may have gone through; the ones after it were never sent
                    reason = f"{where}: disconnected"
                    outcomes.append(
                        Outcome(
                            recipient.email, FAILED, reason=reason, retryable=True, ambiguous=True
                        )
                    )
                    outcomes.extend(
                        Outcome(r.email, FAILED, reason=reason, retryable=True)
                        for r in batch.recipients[index + 1 :]
                    )
                    return outcomes
                except smtplib.SMTPResponseException as err:
                    # MAIL FROM or DATA refused: the sender or the message, never the person
                    text = f"{err.smtp_code} {_text(err.smtp_error)}"
                    if 400 <= err.smtp_code < 500:
                        outcome = Outcome(
                            recipient.email, FAILED, reason=f"smtp {text}", retryable=True
                        )
                    else:
                        what = (
                            "the sender" if isinstance(err, smtplib.SMTPSenderRefused)
                            else "the message" if isinstance(err, smtplib.SMTPDataError)
                            else "the session"
                        )  # fmt: skip
                        halted = f"{where} refused {what}: {text}"
                else:
                    outcome = Outcome(recipient.email, ACCEPTED, message_id=message_id(message))
                if halted is not None:
                    outcomes.extend(
                        Outcome(r.email, FAILED, reason=halted, retryable=True, halt=True)
                        for r in batch.recipients[index:]
                    )
                    return outcomes
                outcomes.append(outcome)
                if batch.on_outcome is not None:
                    batch.on_outcome(outcome)
        finally:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()
        return outcomes


def create(settings: Settings, client: httpx.Client) -> Smtp:
    return Smtp(settings)
