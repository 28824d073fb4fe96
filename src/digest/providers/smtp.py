"""SMTP with the standard library: STARTTLS (port 587), implicit TLS (465) or none.

One connection per batch; each recipient gets its own message, and its outcome is
reported the moment the server answers (``Batch.on_outcome``), so delivery records it
before the next message goes: a crash leaves at most the message in progress unknown.
5xx replies reject the recipient, 4xx replies and dropped connections are worth another
try.
"""

from __future__ import annotations

import datetime as dt
import os
import smtplib
import ssl

import httpx

from digest.config import Settings
from digest.errors import ConfigError, ProviderAuthError
from digest.providers.base import ACCEPTED, FAILED, REJECTED, Batch, Outcome, Provider, all_failed
from digest.render.message import message_id, personalise, to_email


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


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
                try:
                    client.send_message(
                        mail, from_addr=self.smtp.envelope_sender, to_addrs=[recipient.email]
                    )
                except smtplib.SMTPRecipientsRefused as err:
                    code, text = next(iter(err.recipients.values()))
                    reason = f"smtp {code}: {_text(text)}"
                    status, retryable = (FAILED, True) if 400 <= code < 500 else (REJECTED, False)
                    outcome = Outcome(recipient.email, status, reason=reason, retryable=retryable)
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
                    retryable = 400 <= err.smtp_code < 500
                    reason = f"smtp {err.smtp_code}: {_text(err.smtp_error)}"
                    outcome = Outcome(
                        recipient.email,
                        FAILED if retryable else REJECTED,
                        reason=reason,
                        retryable=retryable,
                    )
                else:
                    outcome = Outcome(recipient.email, ACCEPTED, message_id=message_id(message))
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
