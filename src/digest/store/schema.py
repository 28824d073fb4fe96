"""SQLite's schema steps from before Alembic, each in order (a database's
``user_version`` says how many it has had; revision 0007 takes the ones still due), and
the inbox beside the main database. The schema now is store/tables.py."""

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        name TEXT,
        status TEXT NOT NULL DEFAULT 'active'
            CHECK (status IN ('active', 'unsubscribed', 'bounced', 'complained')),
        attributes TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX subscribers_status ON subscribers (status, id);
    CREATE TABLE suppressions (
        hash TEXT PRIMARY KEY,
        created_at TEXT NOT NULL
    );
    CREATE TABLE issues (
        slug TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        source_hash TEXT NOT NULL,
        send_at TEXT NOT NULL,
        status TEXT NOT NULL
            CHECK (status IN ('scheduled', 'sending', 'sent', 'stopped', 'cancelled')),
        rendered TEXT NOT NULL,
        error TEXT,
        cursor INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
    );
    CREATE TABLE batches (
        id INTEGER PRIMARY KEY,
        issue TEXT NOT NULL REFERENCES issues (slug),
        status TEXT NOT NULL CHECK (status IN ('inflight', 'done')),
        created_at TEXT NOT NULL
    );
    CREATE INDEX batches_inflight ON batches (issue, status);
    CREATE TABLE deliveries (
        issue TEXT NOT NULL REFERENCES issues (slug),
        subscriber_id INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN
            ('pending', 'inflight', 'accepted', 'rejected', 'failed', 'unknown', 'skipped')),
        batch_id INTEGER,
        message_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt_at TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (issue, subscriber_id)
    ) WITHOUT ROWID;
    CREATE INDEX deliveries_batch ON deliveries (batch_id);
    CREATE INDEX deliveries_status ON deliveries (issue, status, next_attempt_at);
    """,
    # 2: subscriber ids never reused and a random uid per subscriber (what unsubscribe
    #    tokens name); the list's own identity; an issue version that changes with every
    #    scheduling; the 'incomplete' issue status
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta (key, value) VALUES ('list_id', lower(hex(randomblob(16))));
    CREATE TABLE subscribers_v2 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uid TEXT NOT NULL UNIQUE,
        email TEXT NOT NULL UNIQUE,
        name TEXT,
        status TEXT NOT NULL DEFAULT 'active'
            CHECK (status IN ('active', 'unsubscribed', 'bounced', 'complained')),
        attributes TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    INSERT INTO subscribers_v2 (id, uid, email, name, status, attributes, created_at, updated_at)
        SELECT id, lower(hex(randomblob(12))), email, name, status, attributes, created_at, updated_at
        FROM subscribers;
    DROP TABLE subscribers;
    ALTER TABLE subscribers_v2 RENAME TO subscribers;
    CREATE INDEX subscribers_status ON subscribers (status, id);
    INSERT INTO sqlite_sequence (name, seq) SELECT 'subscribers', 0
        WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'subscribers');
    UPDATE sqlite_sequence SET seq = max(seq,
        (SELECT coalesce(max(subscriber_id), 0) FROM deliveries)) WHERE name = 'subscribers';
    CREATE TABLE issues_v2 (
        slug TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        source_hash TEXT NOT NULL,
        send_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN
            ('scheduled', 'sending', 'sent', 'incomplete', 'stopped', 'cancelled')),
        rendered TEXT NOT NULL,
        error TEXT,
        cursor INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until TEXT,
        version INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
    );
    INSERT INTO issues_v2 (slug, path, source_hash, send_at, status, rendered, error, cursor,
            lease_owner, lease_until, created_at, started_at, finished_at)
        SELECT slug, path, source_hash, send_at, status, rendered, error, cursor,
            lease_owner, lease_until, created_at, started_at, finished_at FROM issues;
    DROP TABLE issues;
    ALTER TABLE issues_v2 RENAME TO issues
    """,
    # 3: the frozen render (tens of kilobytes) in its own table, so the small writes to
    #    an issue on every batch (its cursor, its lease) no longer rewrite it
    """
    CREATE TABLE renders (
        slug TEXT PRIMARY KEY REFERENCES issues (slug),
        rendered TEXT NOT NULL
    );
    INSERT INTO renders (slug, rendered) SELECT slug, rendered FROM issues;
    UPDATE issues SET rendered = ''
    """,
    # 4: what happened to mail after it was handed over: bounces, complaints, provider
    #    unsubscribes, deliveries; each stored once (by its fingerprint)
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL UNIQUE,
        provider TEXT NOT NULL,
        kind TEXT NOT NULL,
        email TEXT NOT NULL,
        subscriber_id INTEGER,
        issue TEXT,
        message_id TEXT,
        detail TEXT NOT NULL DEFAULT '',
        occurred_at TEXT NOT NULL,
        received_at TEXT NOT NULL
    );
    CREATE INDEX events_issue ON events (issue, kind);
    CREATE INDEX events_email ON events (email, occurred_at)
    """,
    # 5: signups waiting for their confirmation (double opt-in), kept apart from the
    #    list; the web version of each scheduled issue, frozen beside its render
    """
    CREATE TABLE signups (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        email TEXT NOT NULL UNIQUE,
        name TEXT,
        requested_at TEXT NOT NULL,
        due INTEGER NOT NULL DEFAULT 0,
        sent_at TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
    );
    CREATE INDEX signups_due ON signups (due, id);
    ALTER TABLE renders ADD COLUMN web TEXT NOT NULL DEFAULT ''
    """,
    # 6: the delivery ledger names its issue by a small integer key instead of the slug
    #    (repeated in every row and in both of its indexes) and keeps settle times as Unix
    #    seconds: a row of a million-recipient issue went from about 335 bytes to under 150.
    #    Its status check is a chain of ORs: SQLite evaluates an IN list in a CHECK by
    #    building a small table per row, which cost 4.5 µs of every insert. The index on
    #    batch_id goes: a batch's rows are found through (issue, status = 'inflight').
    #    The status index ends with the settle time, so "accepted in the last minute"
    #    (`digest status`) is a seek, not a million look-ups.
    """
    ALTER TABLE issues ADD COLUMN key INTEGER;
    UPDATE issues SET key = (SELECT COUNT(*) FROM issues older WHERE older.rowid <= issues.rowid);
    CREATE UNIQUE INDEX issues_key ON issues (key);
    CREATE TABLE deliveries_v2 (
        issue INTEGER NOT NULL,
        subscriber_id INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status = 'pending' OR status = 'inflight'
            OR status = 'accepted' OR status = 'rejected' OR status = 'failed'
            OR status = 'unknown' OR status = 'skipped'),
        batch_id INTEGER,
        message_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt_at TEXT,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (issue, subscriber_id)
    ) WITHOUT ROWID;
    INSERT INTO deliveries_v2 (issue, subscriber_id, status, batch_id, message_id, attempts,
            last_error, next_attempt_at, updated_at)
        SELECT i.key, d.subscriber_id, d.status, d.batch_id, d.message_id, d.attempts,
            d.last_error, d.next_attempt_at, CAST(strftime('%s', d.updated_at) AS INTEGER)
        FROM deliveries d JOIN issues i ON i.slug = d.issue;
    DROP TABLE deliveries;
    ALTER TABLE deliveries_v2 RENAME TO deliveries;
    CREATE INDEX deliveries_status ON deliveries (issue, status, updated_at)
    """,
    # 7: provider events that could not be applied, set aside with the reason, so one
    #    bad event never holds back the ones after it (digest events failed lists them)
    """
    CREATE TABLE events_failed (
        id INTEGER PRIMARY KEY,
        event TEXT NOT NULL,
        reason TEXT NOT NULL,
        failed_at TEXT NOT NULL
    )
    """,
]


# The inbox's ids are never used twice (AUTOINCREMENT): an applier clears the rows up to
# the last id it read, and a row that arrived meanwhile must never take a cleared row's id
# (two appliers, `digest serve --workers 2`, would otherwise lose it).
INBOX_QUEUES = ("unsubscribes", "events", "signups", "choices", "confirms")
INBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS unsubscribes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL,
    received_at TEXT NOT NULL,
    channel TEXT NOT NULL DEFAULT 'link'
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
    key TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS signups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL,
    name TEXT,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS choices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL,
    choice TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS confirms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL,
    received_at TEXT NOT NULL
);
"""
