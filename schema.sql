-- receiver: the one schema.
--
-- Sections are migrations: "-- version: N" starts version N. At start the store
-- applies, in order and each in one transaction, every section newer than the
-- version recorded in schema_version, then records it. Never edit a section that
-- has shipped; add a new one.
--
-- Timestamps are UTC text of one fixed width ("2026-11-23T09:59:58.000000Z"), so
-- they sort as text. Ids are time-ordered ULIDs with a prefix ("msg_", "req_").

-- version: 1
CREATE TABLE schema_version (
    version     INTEGER NOT NULL
);

-- One row per message, whichever side learned of it first (a report or a send).
-- status .. error_message are decided by the merge rule (receiver/core/status.py);
-- status_event_id and status_changed_at identify the report that set them.
CREATE TABLE messages (
    id                  TEXT PRIMARY KEY,
    provider            TEXT NOT NULL,
    provider_message_id TEXT,
    to_number           TEXT,
    status              TEXT,
    status_event_id     TEXT,
    status_changed_at   TEXT,
    error_code          TEXT,
    error_message       TEXT,
    client_reference    TEXT,
    report_count        INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE UNIQUE INDEX messages_by_provider_id ON messages (provider, provider_message_id);
CREATE INDEX messages_by_created ON messages (created_at, id);
CREATE INDEX messages_by_to ON messages (to_number, created_at);
CREATE INDEX messages_by_client_reference ON messages (client_reference, created_at);
CREATE INDEX messages_by_status ON messages (status, created_at);

-- Raw webhook requests that brought at least one new report, kept for export and
-- replay. Authorization and Cookie headers are never stored.
CREATE TABLE raw_requests (
    id          TEXT PRIMARY KEY,
    provider    TEXT NOT NULL,
    received_at TEXT NOT NULL,
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    headers     TEXT NOT NULL,
    body        BLOB NOT NULL
);
CREATE INDEX raw_requests_by_received ON raw_requests (provider, received_at);

-- The processed set and the timeline in one table: the primary key is the
-- processed set (a redelivered event id only bumps deliveries), each row is one
-- report in its message's timeline.
CREATE TABLE events (
    provider          TEXT NOT NULL,
    event_id          TEXT NOT NULL,
    message_id        TEXT NOT NULL REFERENCES messages (id),
    request_id        TEXT NOT NULL REFERENCES raw_requests (id),
    status            TEXT,
    provider_status   TEXT NOT NULL,
    error_code        TEXT,
    error_message     TEXT,
    occurred_at       TEXT NOT NULL,
    received_at       TEXT NOT NULL,
    last_received_at  TEXT NOT NULL,
    outcome           TEXT NOT NULL CHECK (outcome IN ('applied', 'superseded')),
    deliveries        INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (provider, event_id)
);
CREATE INDEX events_by_message ON events (message_id, occurred_at);

-- Staff and API clients. Only a SHA-256 of each token is kept.
CREATE TABLE staff (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'sender', 'admin')),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE UNIQUE INDEX staff_active_name ON staff (name) WHERE revoked_at IS NULL;

-- version: 2
-- When an admin last re-ran an event's stored request through the current parser
-- (POST /v1/events/{provider}/{event_id}/reprocess) and it read differently.
ALTER TABLE events ADD COLUMN reprocessed_at TEXT;

-- version: 3
-- Outbound sends (POST /v1/messages). A sent message records which client sent it
-- (client_reference is then unique per client) and its sender and segment count. The
-- timeline gains events of our own (source 'outbound': accepted by us, by the
-- provider's API, rejected, given up), which carry no raw request: the events table is
-- rebuilt with request_id nullable.
ALTER TABLE messages ADD COLUMN client_id TEXT;
ALTER TABLE messages ADD COLUMN sender TEXT;
ALTER TABLE messages ADD COLUMN segments INTEGER;
CREATE UNIQUE INDEX messages_client_reference_per_client
    ON messages (client_id, client_reference) WHERE client_id IS NOT NULL;

CREATE TABLE events_v3 (
    provider          TEXT NOT NULL,
    event_id          TEXT NOT NULL,
    message_id        TEXT NOT NULL REFERENCES messages (id),
    request_id        TEXT REFERENCES raw_requests (id),
    source            TEXT NOT NULL DEFAULT 'webhook' CHECK (source IN ('webhook', 'outbound')),
    status            TEXT,
    provider_status   TEXT NOT NULL,
    error_code        TEXT,
    error_message     TEXT,
    occurred_at       TEXT NOT NULL,
    received_at       TEXT NOT NULL,
    last_received_at  TEXT NOT NULL,
    outcome           TEXT NOT NULL CHECK (outcome IN ('applied', 'superseded')),
    deliveries        INTEGER NOT NULL DEFAULT 1,
    reprocessed_at    TEXT,
    PRIMARY KEY (provider, event_id)
);
INSERT INTO events_v3 (provider, event_id, message_id, request_id, status, provider_status,
    error_code, error_message, occurred_at, received_at, last_received_at, outcome,
    deliveries, reprocessed_at)
SELECT provider, event_id, message_id, request_id, status, provider_status, error_code,
    error_message, occurred_at, received_at, last_received_at, outcome, deliveries,
    reprocessed_at
FROM events;
DROP TABLE events;
ALTER TABLE events_v3 RENAME TO events;
CREATE INDEX events_by_message ON events (message_id, occurred_at);

-- Idempotency-Key answers, per client (the staff member behind the token): the
-- request's fingerprint and the answer given, replayed for the same request.
CREATE TABLE idempotency_keys (
    client_id    TEXT NOT NULL,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    status_code  INTEGER NOT NULL,
    response     TEXT NOT NULL,
    message_id   TEXT REFERENCES messages (id),
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    PRIMARY KEY (client_id, key)
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);

-- Messages to send. A worker claims due rows with a lease (state 'sending'); a lease
-- that ran out means the worker died mid-attempt, so the attempt is in doubt and the
-- next one looks the message up at the provider before any resend. The body is kept
-- only until the message is sent or given up.
CREATE TABLE outbox (
    message_id       TEXT PRIMARY KEY REFERENCES messages (id),
    provider         TEXT NOT NULL,
    body             TEXT,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'done')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    in_doubt         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    lease_owner      TEXT,
    lease_until      TEXT,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- version: 4
-- The support console (/console). A member may log in with a password set by
-- `receiver staff passwd NAME`: an scrypt hash with its salt and parameters
-- (receiver/auth.py). console_sessions_after ends every console session that began
-- before it (logout, a new password): the session cookie is signed but kept by the
-- browser, so this is how the server takes one back.
ALTER TABLE staff ADD COLUMN password_hash TEXT;
ALTER TABLE staff ADD COLUMN console_sessions_after TEXT;

-- version: 5
-- The console's overview counts messages by provider and current status, and the
-- failures by error code, over the last hour and day of updated_at (our own clock:
-- the last report or send step that changed the record). With this index both read
-- only the window: the counts from the index alone, the failures also their rows.
CREATE INDEX messages_by_updated ON messages (updated_at, provider, status, error_code);

-- version: 6
-- Staff look messages up by provider_message_id alone (GET /v1/messages?provider_message_id=),
-- but the unique index on it led with provider, so that lookup walked every message
-- (0.5 s at 1,000,000 messages: docs/performance.md, "Store at scale"). The same unique
-- index with its columns swapped serves that lookup, the one that also names the
-- provider, and ingest's (provider, provider_message_id), at no cost in size or writes.
DROP INDEX messages_by_provider_id;
CREATE UNIQUE INDEX messages_by_provider_message_id ON messages (provider_message_id, provider);

-- version: 7
-- Retention deletes raw requests by age alone, and export reads them by time with or
-- without a provider: one index on received_at serves both, in place of the one that
-- led with provider (which served neither). The number of indexes ingest writes stays.
DROP INDEX raw_requests_by_received;
CREATE INDEX raw_requests_by_received_at ON raw_requests (received_at, id);
-- Retention and erasure (docs/operations.md, docs/design.md "Retention"). A pruned raw
-- request leaves its events in place (they are the processed set) with request_id set
-- to NULL. This index finds them, and serves the foreign-key check of every deleted
-- raw request, which would otherwise scan the whole events table. Partial: outbound
-- and pruned events carry no request, so it holds only the raw requests' window.
CREATE INDEX events_by_request ON events (request_id) WHERE request_id IS NOT NULL;
-- The same for a pruned message's Idempotency-Key answers.
CREATE INDEX idempotency_keys_by_message ON idempotency_keys (message_id)
    WHERE message_id IS NOT NULL;
-- `receiver erase --to NUMBER` blanks the number of every message to it and records
-- when: a later report that names the number again cannot bring it back.
ALTER TABLE messages ADD COLUMN erased_at TEXT;
-- One row per erasure run, never the number: when, who ran it, and what it changed.
CREATE TABLE erasures (
    id            TEXT PRIMARY KEY,
    erased_at     TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    messages      INTEGER NOT NULL,
    raw_requests  INTEGER NOT NULL
);

-- version: 8
-- Sends through the seed providers (README "Provider types").
-- template: a send of an approved template instead of a text body (FutureSMS, RelayOS
-- send nothing else), as JSON {"id", "language", "variables"}, kept like body only
-- until the row is done.
-- first_attempt_at: when the first attempt that may have reached the provider left. A
-- provider's idempotency key (Txtly, SendComms, RelayOS keep one for 24 h) makes a
-- resend safe only within its lifetime after that.
-- state 'held': an attempt may have reached the provider and neither a lookup nor a
-- resend under a live key can settle it, so the row waits for a person
-- (`receiver outbox held|resend|give-up`). SQLite cannot alter a CHECK constraint:
-- the table is rebuilt.
CREATE TABLE outbox_v8 (
    message_id       TEXT PRIMARY KEY REFERENCES messages (id),
    provider         TEXT NOT NULL,
    body             TEXT,
    template         TEXT,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'done', 'held')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    in_doubt         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    first_attempt_at TEXT,
    lease_owner      TEXT,
    lease_until      TEXT,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
INSERT INTO outbox_v8 (message_id, provider, body, state, attempts, in_doubt,
    next_attempt_at, lease_owner, lease_until, last_error, created_at, updated_at)
SELECT message_id, provider, body, state, attempts, in_doubt, next_attempt_at,
    lease_owner, lease_until, last_error, created_at, updated_at
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v8 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- version: 11
-- Delivery health (contract section 13). Each message gains its destination country
-- (ISO 3166-1 alpha-2 of to_number, set by the store with libphonenumber), the network a
-- report named ("MCC-MNC", never guessed from the number) and sent_at, the earliest
-- hand-over to the provider or `sent` report (report latency counts from it).
ALTER TABLE messages ADD COLUMN country TEXT;
ALTER TABLE messages ADD COLUMN network TEXT;
ALTER TABLE messages ADD COLUMN sent_at TEXT;
CREATE INDEX messages_by_country ON messages (country, created_at);
CREATE INDEX messages_by_network ON messages (network, created_at);

-- The upper bounds (seconds) of the report-latency histogram's buckets; a latency
-- falls in the first bucket whose bound is not below it (a latency beyond the last
-- bound counts in the last bucket). Latencies are rounded to the millisecond first, so
-- julianday's floating point cannot push 50 s into the bucket above 50. GET /v1/stats/delivery reports a percentile as its
-- bucket's upper bound (receiver/core/delivery.py).
CREATE TABLE latency_bounds (
    bucket         INTEGER PRIMARY KEY,
    upper_seconds  REAL NOT NULL UNIQUE
);
INSERT INTO latency_bounds (bucket, upper_seconds) VALUES
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 4),
    (4, 5),
    (5, 6),
    (6, 8),
    (7, 10),
    (8, 12),
    (9, 15),
    (10, 20),
    (11, 25),
    (12, 30),
    (13, 40),
    (14, 50),
    (15, 60),
    (16, 80),
    (17, 100),
    (18, 120),
    (19, 150),
    (20, 200),
    (21, 250),
    (22, 300),
    (23, 400),
    (24, 500),
    (25, 600),
    (26, 800),
    (27, 1000),
    (28, 1200),
    (29, 1500),
    (30, 2000),
    (31, 2500),
    (32, 3000),
    (33, 4000),
    (34, 5000),
    (35, 6000),
    (36, 8000),
    (37, 10000),
    (38, 12000),
    (39, 15000),
    (40, 20000),
    (41, 25000),
    (42, 30000),
    (43, 40000),
    (44, 50000),
    (45, 60000),
    (46, 86400),
    (47, 172800),
    (48, 604800);

-- Messages counted by period of created_at (the hour: "2026-12-05T14"; the day:
-- "2026-12-05"), provider, country, network ('' for none), current status ('' for none
-- yet) and latency bucket (-1 unless delivered after a known hand-over). Triggers keep
-- both in step with messages in the same transaction as every write (a report, a send
-- step, reprocess, a merge of two messages, retention), so a message moving from sent
-- to delivered moves one count. GET /v1/stats/delivery reads only these tables: whole
-- days from the daily one (24 times fewer rows), the hours at either end from the
-- hourly one. Rows may fall to 0 and stay.
CREATE TABLE delivery_hourly (
    period    TEXT NOT NULL,
    provider  TEXT NOT NULL,
    country   TEXT NOT NULL,
    network   TEXT NOT NULL,
    status    TEXT NOT NULL,
    latency   INTEGER NOT NULL,
    messages  INTEGER NOT NULL,
    PRIMARY KEY (period, provider, country, network, status, latency)
) WITHOUT ROWID;
CREATE TABLE delivery_daily (
    period    TEXT NOT NULL,
    provider  TEXT NOT NULL,
    country   TEXT NOT NULL,
    network   TEXT NOT NULL,
    status    TEXT NOT NULL,
    latency   INTEGER NOT NULL,
    messages  INTEGER NOT NULL,
    PRIMARY KEY (period, provider, country, network, status, latency)
) WITHOUT ROWID;

CREATE TRIGGER delivery_stats_insert AFTER INSERT ON messages BEGIN
    INSERT INTO delivery_hourly (period, provider, country, network, status, latency, messages) VALUES (
        substr(NEW.created_at, 1, 13), NEW.provider, coalesce(NEW.country, ''),
        coalesce(NEW.network, ''), coalesce(NEW.status, ''),
        CASE WHEN NEW.status = 'delivered' AND NEW.sent_at IS NOT NULL THEN coalesce(
            (SELECT bucket FROM latency_bounds WHERE upper_seconds >=
                round((julianday(NEW.status_changed_at) - julianday(NEW.sent_at)) * 86400.0, 3)
             ORDER BY upper_seconds LIMIT 1),
            (SELECT max(bucket) FROM latency_bounds)) ELSE -1 END, 1)
    ON CONFLICT (period, provider, country, network, status, latency) DO UPDATE SET messages = messages + 1;
    INSERT INTO delivery_daily (period, provider, country, network, status, latency, messages) VALUES (
        substr(NEW.created_at, 1, 10), NEW.provider, coalesce(NEW.country, ''),
        coalesce(NEW.network, ''), coalesce(NEW.status, ''),
        CASE WHEN NEW.status = 'delivered' AND NEW.sent_at IS NOT NULL THEN coalesce(
            (SELECT bucket FROM latency_bounds WHERE upper_seconds >=
                round((julianday(NEW.status_changed_at) - julianday(NEW.sent_at)) * 86400.0, 3)
             ORDER BY upper_seconds LIMIT 1),
            (SELECT max(bucket) FROM latency_bounds)) ELSE -1 END, 1)
    ON CONFLICT (period, provider, country, network, status, latency) DO UPDATE SET messages = messages + 1;
END;

CREATE TRIGGER delivery_stats_delete AFTER DELETE ON messages BEGIN
    UPDATE delivery_hourly SET messages = messages - 1 WHERE period = substr(OLD.created_at, 1, 13) AND provider = OLD.provider
        AND country = coalesce(OLD.country, '') AND network = coalesce(OLD.network, '')
        AND status = coalesce(OLD.status, '') AND latency = CASE WHEN OLD.status = 'delivered' AND OLD.sent_at IS NOT NULL THEN coalesce(
            (SELECT bucket FROM latency_bounds WHERE upper_seconds >=
                round((julianday(OLD.status_changed_at) - julianday(OLD.sent_at)) * 86400.0, 3)
             ORDER BY upper_seconds LIMIT 1),
            (SELECT max(bucket) FROM latency_bounds)) ELSE -1 END;
    UPDATE delivery_daily SET messages = messages - 1 WHERE period = substr(OLD.created_at, 1, 10) AND provider = OLD.provider
        AND country = coalesce(OLD.country, '') AND network = coalesce(OLD.network, '')
        AND status = coalesce(OLD.status, '') AND latency = CASE WHEN OLD.status = 'delivered' AND OLD.sent_at IS NOT NULL THEN coalesce(
            (SELECT bucket FROM latency_bounds WHERE upper_seconds >=
                round((julianday(OLD.status_changed_at) - julianday(OLD.sent_at)) * 86400.0, 3)
             ORDER BY upper_seconds LIMIT 1),
            (SELECT max(bucket) FROM latency_bounds)) ELSE -1 END;
END;

CREATE TRIGGER delivery_stats_update
AFTER UPDATE OF created_at, provider, country, network, status, status_changed_at, sent_at
ON messages
WHEN OLD.created_at IS NOT NEW.created_at OR OLD.provider IS NOT NEW.provider
    OR OLD.country IS NOT NEW.country OR OLD.network IS NOT NEW.network
    OR OLD.status IS NOT NEW.status OR OLD.status_changed_at IS NOT NEW.status_changed_at
    OR OLD.sent_at IS NOT NEW.sent_at
BEGIN
    UPDATE delivery_hourly SET messages = messages - 1 WHERE period = substr(OLD.created_at, 1, 13) AND provider = OLD.provider
        AND country = coalesce(OLD.country, '') AND network = coalesce(OLD.network, '')
        AND status = coalesce(OLD.status, '') AND latency = CASE WHEN OLD.status = 'delivered' AND OLD.sent_at IS NOT NULL THEN coalesce(
            (SELECT bucket FROM latency_bounds WHERE upper_seconds >=
                round((julianday(OLD.status_changed_at) - julianday(OLD.sent_at)) * 86400.0, 3)
             ORDER BY upper_seconds LIMIT 1),
            (SELECT max(bucket) FROM latency_bounds)) ELSE -1 END;
    UPDATE delivery_daily SET messages = messages - 1 WHERE period = substr(OLD.created_at, 1, 10) AND provider = OLD.provider
        AND country = coalesce(OLD.country, '') AND network = coalesce(OLD.network, '')
        AND status = coalesce(OLD.status, '') AND latency = CASE WHEN OLD.status = 'delivered' AND OLD.sent_at IS NOT NULL THEN coalesce(
            (SELECT bucket FROM latency_bounds WHERE upper_seconds >=
                round((julianday(OLD.status_changed_at) - julianday(OLD.sent_at)) * 86400.0, 3)
             ORDER BY upper_seconds LIMIT 1),
            (SELECT max(bucket) FROM latency_bounds)) ELSE -1 END;
    INSERT INTO delivery_hourly (period, provider, country, network, status, latency, messages) VALUES (
        substr(NEW.created_at, 1, 13), NEW.provider, coalesce(NEW.country, ''),
        coalesce(NEW.network, ''), coalesce(NEW.status, ''),
        CASE WHEN NEW.status = 'delivered' AND NEW.sent_at IS NOT NULL THEN coalesce(
            (SELECT bucket FROM latency_bounds WHERE upper_seconds >=
                round((julianday(NEW.status_changed_at) - julianday(NEW.sent_at)) * 86400.0, 3)
             ORDER BY upper_seconds LIMIT 1),
            (SELECT max(bucket) FROM latency_bounds)) ELSE -1 END, 1)
    ON CONFLICT (period, provider, country, network, status, latency) DO UPDATE SET messages = messages + 1;
    INSERT INTO delivery_daily (period, provider, country, network, status, latency, messages) VALUES (
        substr(NEW.created_at, 1, 10), NEW.provider, coalesce(NEW.country, ''),
        coalesce(NEW.network, ''), coalesce(NEW.status, ''),
        CASE WHEN NEW.status = 'delivered' AND NEW.sent_at IS NOT NULL THEN coalesce(
            (SELECT bucket FROM latency_bounds WHERE upper_seconds >=
                round((julianday(NEW.status_changed_at) - julianday(NEW.sent_at)) * 86400.0, 3)
             ORDER BY upper_seconds LIMIT 1),
            (SELECT max(bucket) FROM latency_bounds)) ELSE -1 END, 1)
    ON CONFLICT (period, provider, country, network, status, latency) DO UPDATE SET messages = messages + 1;
END;

-- The messages stored before this version.
INSERT INTO delivery_hourly (period, provider, country, network, status, latency, messages)
SELECT substr(m.created_at, 1, 13), m.provider, coalesce(m.country, ''),
        coalesce(m.network, ''), coalesce(m.status, ''),
        CASE WHEN m.status = 'delivered' AND m.sent_at IS NOT NULL THEN coalesce(
            (SELECT bucket FROM latency_bounds WHERE upper_seconds >=
                round((julianday(m.status_changed_at) - julianday(m.sent_at)) * 86400.0, 3)
             ORDER BY upper_seconds LIMIT 1),
            (SELECT max(bucket) FROM latency_bounds)) ELSE -1 END, count(*)
FROM messages m GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO delivery_daily (period, provider, country, network, status, latency, messages)
SELECT substr(m.created_at, 1, 10), m.provider, coalesce(m.country, ''),
        coalesce(m.network, ''), coalesce(m.status, ''),
        CASE WHEN m.status = 'delivered' AND m.sent_at IS NOT NULL THEN coalesce(
            (SELECT bucket FROM latency_bounds WHERE upper_seconds >=
                round((julianday(m.status_changed_at) - julianday(m.sent_at)) * 86400.0, 3)
             ORDER BY upper_seconds LIMIT 1),
            (SELECT max(bucket) FROM latency_bounds)) ELSE -1 END, count(*)
FROM messages m GROUP BY 1, 2, 3, 4, 5, 6;
