"""Which signing key signed the links in the mail last scheduled or sent, by its id
(tokens.key_id, which reveals nothing of the key), kept in the store's meta table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

SIGNING_KEY_ID = "signing_key_id"


class SigningKeyRecord:
    """A part of the store: the id of the key behind the links last mailed."""

    _store_part = True
    if TYPE_CHECKING:

        def transaction(self) -> Any: ...

        db: Any

    def record_signing_key(self, key_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (:key, :value)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                {"key": SIGNING_KEY_ID, "value": key_id},
            )

    def signing_key_id(self) -> str | None:
        row = self.db.execute(
            "SELECT value FROM meta WHERE key = :key", {"key": SIGNING_KEY_ID}
        ).fetchone()
        return str(row["value"]) if row else None
