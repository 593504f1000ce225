-- receiver: the one schema.
--
-- Sections are migrations: "-- version: N" starts version N. At start the store
-- applies, in order and each in one transaction, every section newer than the
-- version recorded in schema_version, then records it. Never edit a section that
-- has shipped; add a new one.
--
-- One file for both databases. "-- version: N" alone is a section both run;
-- "-- version: N sqlite" or "-- version: N postgresql" is a section only that one runs,
-- where the dialects cannot share SQL (SQLite rebuilds a table to change a constraint;
-- triggers; types). A version number means the same schema on both: a database of
-- either kind at version N has the same tables, columns and meaning. PostgreSQL starts
-- at version 11 with one section that creates the whole schema of that version; the
-- SQLite sections before it are SQLite's history. Later sections are shared wherever
-- the SQL is portable; where not, one section per dialect with the same number.
--
-- Timestamps are TEXT on both, not a timestamp type: the rules are written once, and
-- compare, order and page by text: UTC of one fixed width ("2026-11-23T09:59:58.000000Z"),
-- so text order is time order. Ids are time-ordered ULIDs with a prefix ("msg_", "req_").

-- version: 1 sqlite
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

-- version: 2 sqlite
-- When an admin last re-ran an event's stored request through the current parser
-- (POST /v1/events/{provider}/{event_id}/reprocess) and it read differently.
ALTER TABLE events ADD COLUMN reprocessed_at TEXT;

-- version: 3 sqlite
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

-- version: 4 sqlite
-- The support console (/console). A member may log in with a password set by
-- `receiver staff passwd NAME`: an scrypt hash with its salt and parameters
-- (receiver/auth.py). console_sessions_after ends every console session that began
-- before it (logout, a new password): the session cookie is signed but kept by the
-- browser, so this is how the server takes one back.
ALTER TABLE staff ADD COLUMN password_hash TEXT;
ALTER TABLE staff ADD COLUMN console_sessions_after TEXT;

-- version: 5 sqlite
-- The console's overview counts messages by provider and current status, and the
-- failures by error code, over the last hour and day of updated_at (our own clock:
-- the last report or send step that changed the record). With this index both read
-- only the window: the counts from the index alone, the failures also their rows.
CREATE INDEX messages_by_updated ON messages (updated_at, provider, status, error_code);

-- version: 6 sqlite
-- Staff look messages up by provider_message_id alone (GET /v1/messages?provider_message_id=),
-- but the unique index on it led with provider, so that lookup walked every message
-- (0.5 s at 1,000,000 messages: docs/performance.md, "Store at scale"). The same unique
-- index with its columns swapped serves that lookup, the one that also names the
-- provider, and ingest's (provider, provider_message_id), at no cost in size or writes.
DROP INDEX messages_by_provider_id;
CREATE UNIQUE INDEX messages_by_provider_message_id ON messages (provider_message_id, provider);

-- version: 7 sqlite
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

-- version: 8 sqlite
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

-- version: 9 sqlite
-- The status change feed (README "Status change feed"). A change is written in the
-- same transaction as the merge that changed a message's status, error_code or
-- error_message. id is the feed's cursor: on SQLite the one writer commits
-- transactions one after another, so id order is commit order (AUTOINCREMENT: an id is
-- never reused, even after the newest row was pruned). change_id is the public id and
-- the webhook-id of every delivery. message is the message row as the change left it
-- (JSON), rendered at read time as the staff API renders a message. No foreign key to
-- messages: a change stays what was said, even of a message merged into another.
CREATE TABLE changes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    change_id       TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    previous_status TEXT,
    status          TEXT,
    error_code      TEXT,
    error_message   TEXT,
    changed_at      TEXT NOT NULL,
    cause_source    TEXT NOT NULL,
    cause_event_id  TEXT,
    message         TEXT NOT NULL,
    UNIQUE (message_id, seq)
);
-- The configured subscribers ([subscribers.NAME]), written at start-up so that the
-- writer routes a change with one INSERT ... SELECT; filters are JSON arrays (NULL:
-- any). A 410 Gone from the subscriber disables it until `receiver subscribers
-- redeliver` (disabled_at, disabled_reason); last_error is the latest failed attempt.
-- worker: the delivery worker that takes this subscriber's new changes straight from
-- the transaction that writes them, leased to it until worker_lease_until (saving a
-- claim per change), while its heartbeat (worker_until) is fresh.
CREATE TABLE subscribers (
    name            TEXT PRIMARY KEY,
    providers       TEXT,
    statuses        TEXT,
    clients         TEXT,
    disabled_at     TEXT,
    disabled_reason TEXT,
    last_error      TEXT,
    last_error_at   TEXT,
    worker          TEXT,
    worker_until    TEXT,
    worker_lease_until TEXT
);
-- One row per change and subscriber it matched: the delivery outbox. Per message and
-- subscriber the rows go out in seq order (a row waits while an earlier one is pending
-- or sending); 'dead' after retry_horizon_seconds.
CREATE TABLE change_deliveries (
    subscriber      TEXT NOT NULL,
    change          INTEGER NOT NULL REFERENCES changes (id),
    message_id      TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_owner     TEXT,
    lease_until     TEXT,
    last_error      TEXT,
    queued_at       TEXT NOT NULL,
    delivered_at    TEXT,
    PRIMARY KEY (subscriber, change)
);
CREATE INDEX change_deliveries_due ON change_deliveries (subscriber, state, next_attempt_at);
CREATE INDEX change_deliveries_by_message ON change_deliveries (subscriber, message_id, seq);

-- version: 10 sqlite
-- Missing reports (contract section 12, docs/design.md "Missing reports"). The timeline
-- gains two sources: 'lookup' (the provider's answer when we asked its API about an
-- overdue message) and 'receiver' (our own verdict: unknown, NO_FINAL_REPORT). SQLite
-- cannot alter a CHECK constraint: the events table is rebuilt.
CREATE TABLE events_v10 (
    provider          TEXT NOT NULL,
    event_id          TEXT NOT NULL,
    message_id        TEXT NOT NULL REFERENCES messages (id),
    request_id        TEXT REFERENCES raw_requests (id),
    source            TEXT NOT NULL DEFAULT 'webhook'
                      CHECK (source IN ('webhook', 'outbound', 'lookup', 'receiver')),
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
INSERT INTO events_v10 SELECT provider, event_id, message_id, request_id, source, status,
    provider_status, error_code, error_message, occurred_at, received_at, last_received_at,
    outcome, deliveries, reprocessed_at
FROM events;
DROP TABLE events;
ALTER TABLE events_v10 RENAME TO events;
CREATE INDEX events_by_message ON events (message_id, occurred_at);
CREATE INDEX events_by_request ON events (request_id) WHERE request_id IS NOT NULL;
-- The messages still waiting for a final report, by provider and last change (a report
-- or a send step): the reconciler's overdue set is one range of this index per
-- provider. Partial, so it holds only the messages in flight, not the millions settled.
CREATE INDEX messages_awaiting_report ON messages (provider, updated_at)
    WHERE status IN ('queued', 'sent', 'buffered');
-- The reconciler's state per overdue message: its lookups so far, when to look again,
-- and the lease that keeps two processes from asking about it at once. No foreign key:
-- a message may go (retention, a report-made record folded into its send) and its row
-- is then never joined again.
CREATE TABLE lookups (
    message_id    TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       TEXT NOT NULL,
    lease_owner   TEXT,
    lease_until   TEXT,
    claimed_at    TEXT,
    last_outcome  TEXT CHECK (last_outcome IN ('pending', 'failed', 'not_found', 'no_lookup')),
    last_error    TEXT,
    last_at       TEXT
);
-- version: 11 sqlite
-- Delivery health (contract section 13). Each message gains its destination country
-- (ISO 3166-1 alpha-2 of to_number, set by the store with libphonenumber), the network a
-- report named ("MCC-MNC", never guessed from the number), sent_at, the earliest
-- hand-over to the provider or `sent` report, and latency_bucket: for a delivered
-- message whose hand-over is known, the bucket of the report-latency histogram (from
-- sent_at to the delivered report's occurred_at) it falls in, set by the store
-- (receiver/core/delivery.py: LATENCY_BOUNDS, 49 buckets from 1 s to a week).
ALTER TABLE messages ADD COLUMN country TEXT;
ALTER TABLE messages ADD COLUMN network TEXT;
ALTER TABLE messages ADD COLUMN sent_at TEXT;
ALTER TABLE messages ADD COLUMN latency_bucket INTEGER;
CREATE INDEX messages_by_country ON messages (country, created_at);
CREATE INDEX messages_by_network ON messages (network, created_at);

-- The delivery aggregates. delivery_*: messages by period of created_at (the hour:
-- "2026-12-05T14"; the day: "2026-12-05"), provider, country and network ('' for none)
-- and current status ('' for none yet). latency_*: per period and group, how many
-- messages are in each latency bucket (l0 .. l48), one row rather than one per bucket,
-- so that a month by provider reads a few thousand rows, not fifty thousand
-- (docs/performance.md, "Delivery health"). Triggers keep them in step with messages in
-- the same transaction as every write (a report, a send step, reprocess, a merge of two
-- messages, erasure, retention): a message moving from sent to delivered moves one
-- count. GET /v1/stats/delivery reads only these: whole days from the daily tables,
-- the hours at either end from the hourly ones. Rows may fall to 0 and stay.
CREATE TABLE delivery_hourly (
    period    TEXT NOT NULL,
    provider  TEXT NOT NULL,
    country   TEXT NOT NULL,
    network   TEXT NOT NULL,
    status    TEXT NOT NULL,
    messages  INTEGER NOT NULL,
    PRIMARY KEY (period, provider, country, network, status)
) WITHOUT ROWID;
CREATE TABLE delivery_daily (
    period    TEXT NOT NULL,
    provider  TEXT NOT NULL,
    country   TEXT NOT NULL,
    network   TEXT NOT NULL,
    status    TEXT NOT NULL,
    messages  INTEGER NOT NULL,
    PRIMARY KEY (period, provider, country, network, status)
) WITHOUT ROWID;
CREATE TABLE latency_hourly (
    period    TEXT NOT NULL,
    provider  TEXT NOT NULL,
    country   TEXT NOT NULL,
    network   TEXT NOT NULL,
    l0 INTEGER NOT NULL DEFAULT 0,
    l1 INTEGER NOT NULL DEFAULT 0,
    l2 INTEGER NOT NULL DEFAULT 0,
    l3 INTEGER NOT NULL DEFAULT 0,
    l4 INTEGER NOT NULL DEFAULT 0,
    l5 INTEGER NOT NULL DEFAULT 0,
    l6 INTEGER NOT NULL DEFAULT 0,
    l7 INTEGER NOT NULL DEFAULT 0,
    l8 INTEGER NOT NULL DEFAULT 0,
    l9 INTEGER NOT NULL DEFAULT 0,
    l10 INTEGER NOT NULL DEFAULT 0,
    l11 INTEGER NOT NULL DEFAULT 0,
    l12 INTEGER NOT NULL DEFAULT 0,
    l13 INTEGER NOT NULL DEFAULT 0,
    l14 INTEGER NOT NULL DEFAULT 0,
    l15 INTEGER NOT NULL DEFAULT 0,
    l16 INTEGER NOT NULL DEFAULT 0,
    l17 INTEGER NOT NULL DEFAULT 0,
    l18 INTEGER NOT NULL DEFAULT 0,
    l19 INTEGER NOT NULL DEFAULT 0,
    l20 INTEGER NOT NULL DEFAULT 0,
    l21 INTEGER NOT NULL DEFAULT 0,
    l22 INTEGER NOT NULL DEFAULT 0,
    l23 INTEGER NOT NULL DEFAULT 0,
    l24 INTEGER NOT NULL DEFAULT 0,
    l25 INTEGER NOT NULL DEFAULT 0,
    l26 INTEGER NOT NULL DEFAULT 0,
    l27 INTEGER NOT NULL DEFAULT 0,
    l28 INTEGER NOT NULL DEFAULT 0,
    l29 INTEGER NOT NULL DEFAULT 0,
    l30 INTEGER NOT NULL DEFAULT 0,
    l31 INTEGER NOT NULL DEFAULT 0,
    l32 INTEGER NOT NULL DEFAULT 0,
    l33 INTEGER NOT NULL DEFAULT 0,
    l34 INTEGER NOT NULL DEFAULT 0,
    l35 INTEGER NOT NULL DEFAULT 0,
    l36 INTEGER NOT NULL DEFAULT 0,
    l37 INTEGER NOT NULL DEFAULT 0,
    l38 INTEGER NOT NULL DEFAULT 0,
    l39 INTEGER NOT NULL DEFAULT 0,
    l40 INTEGER NOT NULL DEFAULT 0,
    l41 INTEGER NOT NULL DEFAULT 0,
    l42 INTEGER NOT NULL DEFAULT 0,
    l43 INTEGER NOT NULL DEFAULT 0,
    l44 INTEGER NOT NULL DEFAULT 0,
    l45 INTEGER NOT NULL DEFAULT 0,
    l46 INTEGER NOT NULL DEFAULT 0,
    l47 INTEGER NOT NULL DEFAULT 0,
    l48 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (period, provider, country, network)
) WITHOUT ROWID;
CREATE TABLE latency_daily (
    period    TEXT NOT NULL,
    provider  TEXT NOT NULL,
    country   TEXT NOT NULL,
    network   TEXT NOT NULL,
    l0 INTEGER NOT NULL DEFAULT 0,
    l1 INTEGER NOT NULL DEFAULT 0,
    l2 INTEGER NOT NULL DEFAULT 0,
    l3 INTEGER NOT NULL DEFAULT 0,
    l4 INTEGER NOT NULL DEFAULT 0,
    l5 INTEGER NOT NULL DEFAULT 0,
    l6 INTEGER NOT NULL DEFAULT 0,
    l7 INTEGER NOT NULL DEFAULT 0,
    l8 INTEGER NOT NULL DEFAULT 0,
    l9 INTEGER NOT NULL DEFAULT 0,
    l10 INTEGER NOT NULL DEFAULT 0,
    l11 INTEGER NOT NULL DEFAULT 0,
    l12 INTEGER NOT NULL DEFAULT 0,
    l13 INTEGER NOT NULL DEFAULT 0,
    l14 INTEGER NOT NULL DEFAULT 0,
    l15 INTEGER NOT NULL DEFAULT 0,
    l16 INTEGER NOT NULL DEFAULT 0,
    l17 INTEGER NOT NULL DEFAULT 0,
    l18 INTEGER NOT NULL DEFAULT 0,
    l19 INTEGER NOT NULL DEFAULT 0,
    l20 INTEGER NOT NULL DEFAULT 0,
    l21 INTEGER NOT NULL DEFAULT 0,
    l22 INTEGER NOT NULL DEFAULT 0,
    l23 INTEGER NOT NULL DEFAULT 0,
    l24 INTEGER NOT NULL DEFAULT 0,
    l25 INTEGER NOT NULL DEFAULT 0,
    l26 INTEGER NOT NULL DEFAULT 0,
    l27 INTEGER NOT NULL DEFAULT 0,
    l28 INTEGER NOT NULL DEFAULT 0,
    l29 INTEGER NOT NULL DEFAULT 0,
    l30 INTEGER NOT NULL DEFAULT 0,
    l31 INTEGER NOT NULL DEFAULT 0,
    l32 INTEGER NOT NULL DEFAULT 0,
    l33 INTEGER NOT NULL DEFAULT 0,
    l34 INTEGER NOT NULL DEFAULT 0,
    l35 INTEGER NOT NULL DEFAULT 0,
    l36 INTEGER NOT NULL DEFAULT 0,
    l37 INTEGER NOT NULL DEFAULT 0,
    l38 INTEGER NOT NULL DEFAULT 0,
    l39 INTEGER NOT NULL DEFAULT 0,
    l40 INTEGER NOT NULL DEFAULT 0,
    l41 INTEGER NOT NULL DEFAULT 0,
    l42 INTEGER NOT NULL DEFAULT 0,
    l43 INTEGER NOT NULL DEFAULT 0,
    l44 INTEGER NOT NULL DEFAULT 0,
    l45 INTEGER NOT NULL DEFAULT 0,
    l46 INTEGER NOT NULL DEFAULT 0,
    l47 INTEGER NOT NULL DEFAULT 0,
    l48 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (period, provider, country, network)
) WITHOUT ROWID;

CREATE TRIGGER delivery_stats_insert AFTER INSERT ON messages BEGIN
    INSERT INTO delivery_hourly (period, provider, country, network, status, messages) VALUES (
        substr(NEW.created_at, 1, 13), NEW.provider, coalesce(NEW.country, ''), coalesce(NEW.network, ''), coalesce(NEW.status, ''), 1)
    ON CONFLICT (period, provider, country, network, status) DO UPDATE SET messages = messages + 1;
    INSERT INTO delivery_daily (period, provider, country, network, status, messages) VALUES (
        substr(NEW.created_at, 1, 10), NEW.provider, coalesce(NEW.country, ''), coalesce(NEW.network, ''), coalesce(NEW.status, ''), 1)
    ON CONFLICT (period, provider, country, network, status) DO UPDATE SET messages = messages + 1;
    INSERT INTO latency_hourly (period, provider, country, network, l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, l12, l13, l14, l15, l16, l17, l18, l19, l20, l21, l22, l23, l24, l25, l26, l27, l28, l29, l30, l31, l32, l33, l34, l35, l36, l37, l38, l39, l40, l41, l42, l43, l44, l45, l46, l47, l48)
    SELECT substr(NEW.created_at, 1, 13), NEW.provider, coalesce(NEW.country, ''), coalesce(NEW.network, ''),
        NEW.latency_bucket = 0, NEW.latency_bucket = 1, NEW.latency_bucket = 2, NEW.latency_bucket = 3, NEW.latency_bucket = 4, NEW.latency_bucket = 5, NEW.latency_bucket = 6, NEW.latency_bucket = 7, NEW.latency_bucket = 8, NEW.latency_bucket = 9, NEW.latency_bucket = 10, NEW.latency_bucket = 11, NEW.latency_bucket = 12, NEW.latency_bucket = 13, NEW.latency_bucket = 14, NEW.latency_bucket = 15, NEW.latency_bucket = 16, NEW.latency_bucket = 17, NEW.latency_bucket = 18, NEW.latency_bucket = 19, NEW.latency_bucket = 20, NEW.latency_bucket = 21, NEW.latency_bucket = 22, NEW.latency_bucket = 23, NEW.latency_bucket = 24, NEW.latency_bucket = 25, NEW.latency_bucket = 26, NEW.latency_bucket = 27, NEW.latency_bucket = 28, NEW.latency_bucket = 29, NEW.latency_bucket = 30, NEW.latency_bucket = 31, NEW.latency_bucket = 32, NEW.latency_bucket = 33, NEW.latency_bucket = 34, NEW.latency_bucket = 35, NEW.latency_bucket = 36, NEW.latency_bucket = 37, NEW.latency_bucket = 38, NEW.latency_bucket = 39, NEW.latency_bucket = 40, NEW.latency_bucket = 41, NEW.latency_bucket = 42, NEW.latency_bucket = 43, NEW.latency_bucket = 44, NEW.latency_bucket = 45, NEW.latency_bucket = 46, NEW.latency_bucket = 47, NEW.latency_bucket = 48
    WHERE NEW.latency_bucket IS NOT NULL
    ON CONFLICT (period, provider, country, network) DO UPDATE SET l0 = l0 + excluded.l0, l1 = l1 + excluded.l1, l2 = l2 + excluded.l2, l3 = l3 + excluded.l3, l4 = l4 + excluded.l4, l5 = l5 + excluded.l5, l6 = l6 + excluded.l6, l7 = l7 + excluded.l7, l8 = l8 + excluded.l8, l9 = l9 + excluded.l9, l10 = l10 + excluded.l10, l11 = l11 + excluded.l11, l12 = l12 + excluded.l12, l13 = l13 + excluded.l13, l14 = l14 + excluded.l14, l15 = l15 + excluded.l15, l16 = l16 + excluded.l16, l17 = l17 + excluded.l17, l18 = l18 + excluded.l18, l19 = l19 + excluded.l19, l20 = l20 + excluded.l20, l21 = l21 + excluded.l21, l22 = l22 + excluded.l22, l23 = l23 + excluded.l23, l24 = l24 + excluded.l24, l25 = l25 + excluded.l25, l26 = l26 + excluded.l26, l27 = l27 + excluded.l27, l28 = l28 + excluded.l28, l29 = l29 + excluded.l29, l30 = l30 + excluded.l30, l31 = l31 + excluded.l31, l32 = l32 + excluded.l32, l33 = l33 + excluded.l33, l34 = l34 + excluded.l34, l35 = l35 + excluded.l35, l36 = l36 + excluded.l36, l37 = l37 + excluded.l37, l38 = l38 + excluded.l38, l39 = l39 + excluded.l39, l40 = l40 + excluded.l40, l41 = l41 + excluded.l41, l42 = l42 + excluded.l42, l43 = l43 + excluded.l43, l44 = l44 + excluded.l44, l45 = l45 + excluded.l45, l46 = l46 + excluded.l46, l47 = l47 + excluded.l47, l48 = l48 + excluded.l48;
    INSERT INTO latency_daily (period, provider, country, network, l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, l12, l13, l14, l15, l16, l17, l18, l19, l20, l21, l22, l23, l24, l25, l26, l27, l28, l29, l30, l31, l32, l33, l34, l35, l36, l37, l38, l39, l40, l41, l42, l43, l44, l45, l46, l47, l48)
    SELECT substr(NEW.created_at, 1, 10), NEW.provider, coalesce(NEW.country, ''), coalesce(NEW.network, ''),
        NEW.latency_bucket = 0, NEW.latency_bucket = 1, NEW.latency_bucket = 2, NEW.latency_bucket = 3, NEW.latency_bucket = 4, NEW.latency_bucket = 5, NEW.latency_bucket = 6, NEW.latency_bucket = 7, NEW.latency_bucket = 8, NEW.latency_bucket = 9, NEW.latency_bucket = 10, NEW.latency_bucket = 11, NEW.latency_bucket = 12, NEW.latency_bucket = 13, NEW.latency_bucket = 14, NEW.latency_bucket = 15, NEW.latency_bucket = 16, NEW.latency_bucket = 17, NEW.latency_bucket = 18, NEW.latency_bucket = 19, NEW.latency_bucket = 20, NEW.latency_bucket = 21, NEW.latency_bucket = 22, NEW.latency_bucket = 23, NEW.latency_bucket = 24, NEW.latency_bucket = 25, NEW.latency_bucket = 26, NEW.latency_bucket = 27, NEW.latency_bucket = 28, NEW.latency_bucket = 29, NEW.latency_bucket = 30, NEW.latency_bucket = 31, NEW.latency_bucket = 32, NEW.latency_bucket = 33, NEW.latency_bucket = 34, NEW.latency_bucket = 35, NEW.latency_bucket = 36, NEW.latency_bucket = 37, NEW.latency_bucket = 38, NEW.latency_bucket = 39, NEW.latency_bucket = 40, NEW.latency_bucket = 41, NEW.latency_bucket = 42, NEW.latency_bucket = 43, NEW.latency_bucket = 44, NEW.latency_bucket = 45, NEW.latency_bucket = 46, NEW.latency_bucket = 47, NEW.latency_bucket = 48
    WHERE NEW.latency_bucket IS NOT NULL
    ON CONFLICT (period, provider, country, network) DO UPDATE SET l0 = l0 + excluded.l0, l1 = l1 + excluded.l1, l2 = l2 + excluded.l2, l3 = l3 + excluded.l3, l4 = l4 + excluded.l4, l5 = l5 + excluded.l5, l6 = l6 + excluded.l6, l7 = l7 + excluded.l7, l8 = l8 + excluded.l8, l9 = l9 + excluded.l9, l10 = l10 + excluded.l10, l11 = l11 + excluded.l11, l12 = l12 + excluded.l12, l13 = l13 + excluded.l13, l14 = l14 + excluded.l14, l15 = l15 + excluded.l15, l16 = l16 + excluded.l16, l17 = l17 + excluded.l17, l18 = l18 + excluded.l18, l19 = l19 + excluded.l19, l20 = l20 + excluded.l20, l21 = l21 + excluded.l21, l22 = l22 + excluded.l22, l23 = l23 + excluded.l23, l24 = l24 + excluded.l24, l25 = l25 + excluded.l25, l26 = l26 + excluded.l26, l27 = l27 + excluded.l27, l28 = l28 + excluded.l28, l29 = l29 + excluded.l29, l30 = l30 + excluded.l30, l31 = l31 + excluded.l31, l32 = l32 + excluded.l32, l33 = l33 + excluded.l33, l34 = l34 + excluded.l34, l35 = l35 + excluded.l35, l36 = l36 + excluded.l36, l37 = l37 + excluded.l37, l38 = l38 + excluded.l38, l39 = l39 + excluded.l39, l40 = l40 + excluded.l40, l41 = l41 + excluded.l41, l42 = l42 + excluded.l42, l43 = l43 + excluded.l43, l44 = l44 + excluded.l44, l45 = l45 + excluded.l45, l46 = l46 + excluded.l46, l47 = l47 + excluded.l47, l48 = l48 + excluded.l48;
END;

CREATE TRIGGER delivery_stats_delete AFTER DELETE ON messages BEGIN
    UPDATE delivery_hourly SET messages = messages - 1
    WHERE period = substr(OLD.created_at, 1, 13) AND provider = OLD.provider
        AND country = coalesce(OLD.country, '') AND network = coalesce(OLD.network, '') AND status = coalesce(OLD.status, '');
    UPDATE delivery_daily SET messages = messages - 1
    WHERE period = substr(OLD.created_at, 1, 10) AND provider = OLD.provider
        AND country = coalesce(OLD.country, '') AND network = coalesce(OLD.network, '') AND status = coalesce(OLD.status, '');
    UPDATE latency_hourly SET l0 = l0 - (OLD.latency_bucket = 0), l1 = l1 - (OLD.latency_bucket = 1), l2 = l2 - (OLD.latency_bucket = 2), l3 = l3 - (OLD.latency_bucket = 3), l4 = l4 - (OLD.latency_bucket = 4), l5 = l5 - (OLD.latency_bucket = 5), l6 = l6 - (OLD.latency_bucket = 6), l7 = l7 - (OLD.latency_bucket = 7), l8 = l8 - (OLD.latency_bucket = 8), l9 = l9 - (OLD.latency_bucket = 9), l10 = l10 - (OLD.latency_bucket = 10), l11 = l11 - (OLD.latency_bucket = 11), l12 = l12 - (OLD.latency_bucket = 12), l13 = l13 - (OLD.latency_bucket = 13), l14 = l14 - (OLD.latency_bucket = 14), l15 = l15 - (OLD.latency_bucket = 15), l16 = l16 - (OLD.latency_bucket = 16), l17 = l17 - (OLD.latency_bucket = 17), l18 = l18 - (OLD.latency_bucket = 18), l19 = l19 - (OLD.latency_bucket = 19), l20 = l20 - (OLD.latency_bucket = 20), l21 = l21 - (OLD.latency_bucket = 21), l22 = l22 - (OLD.latency_bucket = 22), l23 = l23 - (OLD.latency_bucket = 23), l24 = l24 - (OLD.latency_bucket = 24), l25 = l25 - (OLD.latency_bucket = 25), l26 = l26 - (OLD.latency_bucket = 26), l27 = l27 - (OLD.latency_bucket = 27), l28 = l28 - (OLD.latency_bucket = 28), l29 = l29 - (OLD.latency_bucket = 29), l30 = l30 - (OLD.latency_bucket = 30), l31 = l31 - (OLD.latency_bucket = 31), l32 = l32 - (OLD.latency_bucket = 32), l33 = l33 - (OLD.latency_bucket = 33), l34 = l34 - (OLD.latency_bucket = 34), l35 = l35 - (OLD.latency_bucket = 35), l36 = l36 - (OLD.latency_bucket = 36), l37 = l37 - (OLD.latency_bucket = 37), l38 = l38 - (OLD.latency_bucket = 38), l39 = l39 - (OLD.latency_bucket = 39), l40 = l40 - (OLD.latency_bucket = 40), l41 = l41 - (OLD.latency_bucket = 41), l42 = l42 - (OLD.latency_bucket = 42), l43 = l43 - (OLD.latency_bucket = 43), l44 = l44 - (OLD.latency_bucket = 44), l45 = l45 - (OLD.latency_bucket = 45), l46 = l46 - (OLD.latency_bucket = 46), l47 = l47 - (OLD.latency_bucket = 47), l48 = l48 - (OLD.latency_bucket = 48)
    WHERE OLD.latency_bucket IS NOT NULL AND period = substr(OLD.created_at, 1, 13) AND provider = OLD.provider
        AND country = coalesce(OLD.country, '') AND network = coalesce(OLD.network, '');
    UPDATE latency_daily SET l0 = l0 - (OLD.latency_bucket = 0), l1 = l1 - (OLD.latency_bucket = 1), l2 = l2 - (OLD.latency_bucket = 2), l3 = l3 - (OLD.latency_bucket = 3), l4 = l4 - (OLD.latency_bucket = 4), l5 = l5 - (OLD.latency_bucket = 5), l6 = l6 - (OLD.latency_bucket = 6), l7 = l7 - (OLD.latency_bucket = 7), l8 = l8 - (OLD.latency_bucket = 8), l9 = l9 - (OLD.latency_bucket = 9), l10 = l10 - (OLD.latency_bucket = 10), l11 = l11 - (OLD.latency_bucket = 11), l12 = l12 - (OLD.latency_bucket = 12), l13 = l13 - (OLD.latency_bucket = 13), l14 = l14 - (OLD.latency_bucket = 14), l15 = l15 - (OLD.latency_bucket = 15), l16 = l16 - (OLD.latency_bucket = 16), l17 = l17 - (OLD.latency_bucket = 17), l18 = l18 - (OLD.latency_bucket = 18), l19 = l19 - (OLD.latency_bucket = 19), l20 = l20 - (OLD.latency_bucket = 20), l21 = l21 - (OLD.latency_bucket = 21), l22 = l22 - (OLD.latency_bucket = 22), l23 = l23 - (OLD.latency_bucket = 23), l24 = l24 - (OLD.latency_bucket = 24), l25 = l25 - (OLD.latency_bucket = 25), l26 = l26 - (OLD.latency_bucket = 26), l27 = l27 - (OLD.latency_bucket = 27), l28 = l28 - (OLD.latency_bucket = 28), l29 = l29 - (OLD.latency_bucket = 29), l30 = l30 - (OLD.latency_bucket = 30), l31 = l31 - (OLD.latency_bucket = 31), l32 = l32 - (OLD.latency_bucket = 32), l33 = l33 - (OLD.latency_bucket = 33), l34 = l34 - (OLD.latency_bucket = 34), l35 = l35 - (OLD.latency_bucket = 35), l36 = l36 - (OLD.latency_bucket = 36), l37 = l37 - (OLD.latency_bucket = 37), l38 = l38 - (OLD.latency_bucket = 38), l39 = l39 - (OLD.latency_bucket = 39), l40 = l40 - (OLD.latency_bucket = 40), l41 = l41 - (OLD.latency_bucket = 41), l42 = l42 - (OLD.latency_bucket = 42), l43 = l43 - (OLD.latency_bucket = 43), l44 = l44 - (OLD.latency_bucket = 44), l45 = l45 - (OLD.latency_bucket = 45), l46 = l46 - (OLD.latency_bucket = 46), l47 = l47 - (OLD.latency_bucket = 47), l48 = l48 - (OLD.latency_bucket = 48)
    WHERE OLD.latency_bucket IS NOT NULL AND period = substr(OLD.created_at, 1, 10) AND provider = OLD.provider
        AND country = coalesce(OLD.country, '') AND network = coalesce(OLD.network, '');
END;

CREATE TRIGGER delivery_stats_update
AFTER UPDATE OF created_at, provider, country, network, status ON messages
WHEN OLD.created_at IS NOT NEW.created_at OR OLD.provider IS NOT NEW.provider
    OR OLD.country IS NOT NEW.country OR OLD.network IS NOT NEW.network
    OR OLD.status IS NOT NEW.status
BEGIN
    UPDATE delivery_hourly SET messages = messages - 1
    WHERE period = substr(OLD.created_at, 1, 13) AND provider = OLD.provider
        AND country = coalesce(OLD.country, '') AND network = coalesce(OLD.network, '') AND status = coalesce(OLD.status, '');
    UPDATE delivery_daily SET messages = messages - 1
    WHERE period = substr(OLD.created_at, 1, 10) AND provider = OLD.provider
        AND country = coalesce(OLD.country, '') AND network = coalesce(OLD.network, '') AND status = coalesce(OLD.status, '');
    INSERT INTO delivery_hourly (period, provider, country, network, status, messages) VALUES (
        substr(NEW.created_at, 1, 13), NEW.provider, coalesce(NEW.country, ''), coalesce(NEW.network, ''), coalesce(NEW.status, ''), 1)
    ON CONFLICT (period, provider, country, network, status) DO UPDATE SET messages = messages + 1;
    INSERT INTO delivery_daily (period, provider, country, network, status, messages) VALUES (
        substr(NEW.created_at, 1, 10), NEW.provider, coalesce(NEW.country, ''), coalesce(NEW.network, ''), coalesce(NEW.status, ''), 1)
    ON CONFLICT (period, provider, country, network, status) DO UPDATE SET messages = messages + 1;
END;

CREATE TRIGGER delivery_latency_update
AFTER UPDATE OF created_at, provider, country, network, latency_bucket ON messages
WHEN OLD.created_at IS NOT NEW.created_at OR OLD.provider IS NOT NEW.provider
    OR OLD.country IS NOT NEW.country OR OLD.network IS NOT NEW.network
    OR OLD.latency_bucket IS NOT NEW.latency_bucket
BEGIN
    UPDATE latency_hourly SET l0 = l0 - (OLD.latency_bucket = 0), l1 = l1 - (OLD.latency_bucket = 1), l2 = l2 - (OLD.latency_bucket = 2), l3 = l3 - (OLD.latency_bucket = 3), l4 = l4 - (OLD.latency_bucket = 4), l5 = l5 - (OLD.latency_bucket = 5), l6 = l6 - (OLD.latency_bucket = 6), l7 = l7 - (OLD.latency_bucket = 7), l8 = l8 - (OLD.latency_bucket = 8), l9 = l9 - (OLD.latency_bucket = 9), l10 = l10 - (OLD.latency_bucket = 10), l11 = l11 - (OLD.latency_bucket = 11), l12 = l12 - (OLD.latency_bucket = 12), l13 = l13 - (OLD.latency_bucket = 13), l14 = l14 - (OLD.latency_bucket = 14), l15 = l15 - (OLD.latency_bucket = 15), l16 = l16 - (OLD.latency_bucket = 16), l17 = l17 - (OLD.latency_bucket = 17), l18 = l18 - (OLD.latency_bucket = 18), l19 = l19 - (OLD.latency_bucket = 19), l20 = l20 - (OLD.latency_bucket = 20), l21 = l21 - (OLD.latency_bucket = 21), l22 = l22 - (OLD.latency_bucket = 22), l23 = l23 - (OLD.latency_bucket = 23), l24 = l24 - (OLD.latency_bucket = 24), l25 = l25 - (OLD.latency_bucket = 25), l26 = l26 - (OLD.latency_bucket = 26), l27 = l27 - (OLD.latency_bucket = 27), l28 = l28 - (OLD.latency_bucket = 28), l29 = l29 - (OLD.latency_bucket = 29), l30 = l30 - (OLD.latency_bucket = 30), l31 = l31 - (OLD.latency_bucket = 31), l32 = l32 - (OLD.latency_bucket = 32), l33 = l33 - (OLD.latency_bucket = 33), l34 = l34 - (OLD.latency_bucket = 34), l35 = l35 - (OLD.latency_bucket = 35), l36 = l36 - (OLD.latency_bucket = 36), l37 = l37 - (OLD.latency_bucket = 37), l38 = l38 - (OLD.latency_bucket = 38), l39 = l39 - (OLD.latency_bucket = 39), l40 = l40 - (OLD.latency_bucket = 40), l41 = l41 - (OLD.latency_bucket = 41), l42 = l42 - (OLD.latency_bucket = 42), l43 = l43 - (OLD.latency_bucket = 43), l44 = l44 - (OLD.latency_bucket = 44), l45 = l45 - (OLD.latency_bucket = 45), l46 = l46 - (OLD.latency_bucket = 46), l47 = l47 - (OLD.latency_bucket = 47), l48 = l48 - (OLD.latency_bucket = 48)
    WHERE OLD.latency_bucket IS NOT NULL AND period = substr(OLD.created_at, 1, 13) AND provider = OLD.provider
        AND country = coalesce(OLD.country, '') AND network = coalesce(OLD.network, '');
    UPDATE latency_daily SET l0 = l0 - (OLD.latency_bucket = 0), l1 = l1 - (OLD.latency_bucket = 1), l2 = l2 - (OLD.latency_bucket = 2), l3 = l3 - (OLD.latency_bucket = 3), l4 = l4 - (OLD.latency_bucket = 4), l5 = l5 - (OLD.latency_bucket = 5), l6 = l6 - (OLD.latency_bucket = 6), l7 = l7 - (OLD.latency_bucket = 7), l8 = l8 - (OLD.latency_bucket = 8), l9 = l9 - (OLD.latency_bucket = 9), l10 = l10 - (OLD.latency_bucket = 10), l11 = l11 - (OLD.latency_bucket = 11), l12 = l12 - (OLD.latency_bucket = 12), l13 = l13 - (OLD.latency_bucket = 13), l14 = l14 - (OLD.latency_bucket = 14), l15 = l15 - (OLD.latency_bucket = 15), l16 = l16 - (OLD.latency_bucket = 16), l17 = l17 - (OLD.latency_bucket = 17), l18 = l18 - (OLD.latency_bucket = 18), l19 = l19 - (OLD.latency_bucket = 19), l20 = l20 - (OLD.latency_bucket = 20), l21 = l21 - (OLD.latency_bucket = 21), l22 = l22 - (OLD.latency_bucket = 22), l23 = l23 - (OLD.latency_bucket = 23), l24 = l24 - (OLD.latency_bucket = 24), l25 = l25 - (OLD.latency_bucket = 25), l26 = l26 - (OLD.latency_bucket = 26), l27 = l27 - (OLD.latency_bucket = 27), l28 = l28 - (OLD.latency_bucket = 28), l29 = l29 - (OLD.latency_bucket = 29), l30 = l30 - (OLD.latency_bucket = 30), l31 = l31 - (OLD.latency_bucket = 31), l32 = l32 - (OLD.latency_bucket = 32), l33 = l33 - (OLD.latency_bucket = 33), l34 = l34 - (OLD.latency_bucket = 34), l35 = l35 - (OLD.latency_bucket = 35), l36 = l36 - (OLD.latency_bucket = 36), l37 = l37 - (OLD.latency_bucket = 37), l38 = l38 - (OLD.latency_bucket = 38), l39 = l39 - (OLD.latency_bucket = 39), l40 = l40 - (OLD.latency_bucket = 40), l41 = l41 - (OLD.latency_bucket = 41), l42 = l42 - (OLD.latency_bucket = 42), l43 = l43 - (OLD.latency_bucket = 43), l44 = l44 - (OLD.latency_bucket = 44), l45 = l45 - (OLD.latency_bucket = 45), l46 = l46 - (OLD.latency_bucket = 46), l47 = l47 - (OLD.latency_bucket = 47), l48 = l48 - (OLD.latency_bucket = 48)
    WHERE OLD.latency_bucket IS NOT NULL AND period = substr(OLD.created_at, 1, 10) AND provider = OLD.provider
        AND country = coalesce(OLD.country, '') AND network = coalesce(OLD.network, '');
    INSERT INTO latency_hourly (period, provider, country, network, l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, l12, l13, l14, l15, l16, l17, l18, l19, l20, l21, l22, l23, l24, l25, l26, l27, l28, l29, l30, l31, l32, l33, l34, l35, l36, l37, l38, l39, l40, l41, l42, l43, l44, l45, l46, l47, l48)
    SELECT substr(NEW.created_at, 1, 13), NEW.provider, coalesce(NEW.country, ''), coalesce(NEW.network, ''),
        NEW.latency_bucket = 0, NEW.latency_bucket = 1, NEW.latency_bucket = 2, NEW.latency_bucket = 3, NEW.latency_bucket = 4, NEW.latency_bucket = 5, NEW.latency_bucket = 6, NEW.latency_bucket = 7, NEW.latency_bucket = 8, NEW.latency_bucket = 9, NEW.latency_bucket = 10, NEW.latency_bucket = 11, NEW.latency_bucket = 12, NEW.latency_bucket = 13, NEW.latency_bucket = 14, NEW.latency_bucket = 15, NEW.latency_bucket = 16, NEW.latency_bucket = 17, NEW.latency_bucket = 18, NEW.latency_bucket = 19, NEW.latency_bucket = 20, NEW.latency_bucket = 21, NEW.latency_bucket = 22, NEW.latency_bucket = 23, NEW.latency_bucket = 24, NEW.latency_bucket = 25, NEW.latency_bucket = 26, NEW.latency_bucket = 27, NEW.latency_bucket = 28, NEW.latency_bucket = 29, NEW.latency_bucket = 30, NEW.latency_bucket = 31, NEW.latency_bucket = 32, NEW.latency_bucket = 33, NEW.latency_bucket = 34, NEW.latency_bucket = 35, NEW.latency_bucket = 36, NEW.latency_bucket = 37, NEW.latency_bucket = 38, NEW.latency_bucket = 39, NEW.latency_bucket = 40, NEW.latency_bucket = 41, NEW.latency_bucket = 42, NEW.latency_bucket = 43, NEW.latency_bucket = 44, NEW.latency_bucket = 45, NEW.latency_bucket = 46, NEW.latency_bucket = 47, NEW.latency_bucket = 48
    WHERE NEW.latency_bucket IS NOT NULL
    ON CONFLICT (period, provider, country, network) DO UPDATE SET l0 = l0 + excluded.l0, l1 = l1 + excluded.l1, l2 = l2 + excluded.l2, l3 = l3 + excluded.l3, l4 = l4 + excluded.l4, l5 = l5 + excluded.l5, l6 = l6 + excluded.l6, l7 = l7 + excluded.l7, l8 = l8 + excluded.l8, l9 = l9 + excluded.l9, l10 = l10 + excluded.l10, l11 = l11 + excluded.l11, l12 = l12 + excluded.l12, l13 = l13 + excluded.l13, l14 = l14 + excluded.l14, l15 = l15 + excluded.l15, l16 = l16 + excluded.l16, l17 = l17 + excluded.l17, l18 = l18 + excluded.l18, l19 = l19 + excluded.l19, l20 = l20 + excluded.l20, l21 = l21 + excluded.l21, l22 = l22 + excluded.l22, l23 = l23 + excluded.l23, l24 = l24 + excluded.l24, l25 = l25 + excluded.l25, l26 = l26 + excluded.l26, l27 = l27 + excluded.l27, l28 = l28 + excluded.l28, l29 = l29 + excluded.l29, l30 = l30 + excluded.l30, l31 = l31 + excluded.l31, l32 = l32 + excluded.l32, l33 = l33 + excluded.l33, l34 = l34 + excluded.l34, l35 = l35 + excluded.l35, l36 = l36 + excluded.l36, l37 = l37 + excluded.l37, l38 = l38 + excluded.l38, l39 = l39 + excluded.l39, l40 = l40 + excluded.l40, l41 = l41 + excluded.l41, l42 = l42 + excluded.l42, l43 = l43 + excluded.l43, l44 = l44 + excluded.l44, l45 = l45 + excluded.l45, l46 = l46 + excluded.l46, l47 = l47 + excluded.l47, l48 = l48 + excluded.l48;
    INSERT INTO latency_daily (period, provider, country, network, l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, l12, l13, l14, l15, l16, l17, l18, l19, l20, l21, l22, l23, l24, l25, l26, l27, l28, l29, l30, l31, l32, l33, l34, l35, l36, l37, l38, l39, l40, l41, l42, l43, l44, l45, l46, l47, l48)
    SELECT substr(NEW.created_at, 1, 10), NEW.provider, coalesce(NEW.country, ''), coalesce(NEW.network, ''),
        NEW.latency_bucket = 0, NEW.latency_bucket = 1, NEW.latency_bucket = 2, NEW.latency_bucket = 3, NEW.latency_bucket = 4, NEW.latency_bucket = 5, NEW.latency_bucket = 6, NEW.latency_bucket = 7, NEW.latency_bucket = 8, NEW.latency_bucket = 9, NEW.latency_bucket = 10, NEW.latency_bucket = 11, NEW.latency_bucket = 12, NEW.latency_bucket = 13, NEW.latency_bucket = 14, NEW.latency_bucket = 15, NEW.latency_bucket = 16, NEW.latency_bucket = 17, NEW.latency_bucket = 18, NEW.latency_bucket = 19, NEW.latency_bucket = 20, NEW.latency_bucket = 21, NEW.latency_bucket = 22, NEW.latency_bucket = 23, NEW.latency_bucket = 24, NEW.latency_bucket = 25, NEW.latency_bucket = 26, NEW.latency_bucket = 27, NEW.latency_bucket = 28, NEW.latency_bucket = 29, NEW.latency_bucket = 30, NEW.latency_bucket = 31, NEW.latency_bucket = 32, NEW.latency_bucket = 33, NEW.latency_bucket = 34, NEW.latency_bucket = 35, NEW.latency_bucket = 36, NEW.latency_bucket = 37, NEW.latency_bucket = 38, NEW.latency_bucket = 39, NEW.latency_bucket = 40, NEW.latency_bucket = 41, NEW.latency_bucket = 42, NEW.latency_bucket = 43, NEW.latency_bucket = 44, NEW.latency_bucket = 45, NEW.latency_bucket = 46, NEW.latency_bucket = 47, NEW.latency_bucket = 48
    WHERE NEW.latency_bucket IS NOT NULL
    ON CONFLICT (period, provider, country, network) DO UPDATE SET l0 = l0 + excluded.l0, l1 = l1 + excluded.l1, l2 = l2 + excluded.l2, l3 = l3 + excluded.l3, l4 = l4 + excluded.l4, l5 = l5 + excluded.l5, l6 = l6 + excluded.l6, l7 = l7 + excluded.l7, l8 = l8 + excluded.l8, l9 = l9 + excluded.l9, l10 = l10 + excluded.l10, l11 = l11 + excluded.l11, l12 = l12 + excluded.l12, l13 = l13 + excluded.l13, l14 = l14 + excluded.l14, l15 = l15 + excluded.l15, l16 = l16 + excluded.l16, l17 = l17 + excluded.l17, l18 = l18 + excluded.l18, l19 = l19 + excluded.l19, l20 = l20 + excluded.l20, l21 = l21 + excluded.l21, l22 = l22 + excluded.l22, l23 = l23 + excluded.l23, l24 = l24 + excluded.l24, l25 = l25 + excluded.l25, l26 = l26 + excluded.l26, l27 = l27 + excluded.l27, l28 = l28 + excluded.l28, l29 = l29 + excluded.l29, l30 = l30 + excluded.l30, l31 = l31 + excluded.l31, l32 = l32 + excluded.l32, l33 = l33 + excluded.l33, l34 = l34 + excluded.l34, l35 = l35 + excluded.l35, l36 = l36 + excluded.l36, l37 = l37 + excluded.l37, l38 = l38 + excluded.l38, l39 = l39 + excluded.l39, l40 = l40 + excluded.l40, l41 = l41 + excluded.l41, l42 = l42 + excluded.l42, l43 = l43 + excluded.l43, l44 = l44 + excluded.l44, l45 = l45 + excluded.l45, l46 = l46 + excluded.l46, l47 = l47 + excluded.l47, l48 = l48 + excluded.l48;
END;

-- The messages stored before this version (none has a latency yet: no sent_at).
INSERT INTO delivery_hourly (period, provider, country, network, status, messages)
SELECT substr(m.created_at, 1, 13), m.provider, coalesce(m.country, ''), coalesce(m.network, ''), coalesce(m.status, ''), count(*)
FROM messages m GROUP BY 1, 2, 3, 4, 5;
INSERT INTO delivery_daily (period, provider, country, network, status, messages)
SELECT substr(m.created_at, 1, 10), m.provider, coalesce(m.country, ''), coalesce(m.network, ''), coalesce(m.status, ''), count(*)
FROM messages m GROUP BY 1, 2, 3, 4, 5;
INSERT INTO latency_hourly (period, provider, country, network, l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, l12, l13, l14, l15, l16, l17, l18, l19, l20, l21, l22, l23, l24, l25, l26, l27, l28, l29, l30, l31, l32, l33, l34, l35, l36, l37, l38, l39, l40, l41, l42, l43, l44, l45, l46, l47, l48)
SELECT substr(m.created_at, 1, 13), m.provider, coalesce(m.country, ''), coalesce(m.network, ''), sum(m.latency_bucket = 0), sum(m.latency_bucket = 1), sum(m.latency_bucket = 2), sum(m.latency_bucket = 3), sum(m.latency_bucket = 4), sum(m.latency_bucket = 5), sum(m.latency_bucket = 6), sum(m.latency_bucket = 7), sum(m.latency_bucket = 8), sum(m.latency_bucket = 9), sum(m.latency_bucket = 10), sum(m.latency_bucket = 11), sum(m.latency_bucket = 12), sum(m.latency_bucket = 13), sum(m.latency_bucket = 14), sum(m.latency_bucket = 15), sum(m.latency_bucket = 16), sum(m.latency_bucket = 17), sum(m.latency_bucket = 18), sum(m.latency_bucket = 19), sum(m.latency_bucket = 20), sum(m.latency_bucket = 21), sum(m.latency_bucket = 22), sum(m.latency_bucket = 23), sum(m.latency_bucket = 24), sum(m.latency_bucket = 25), sum(m.latency_bucket = 26), sum(m.latency_bucket = 27), sum(m.latency_bucket = 28), sum(m.latency_bucket = 29), sum(m.latency_bucket = 30), sum(m.latency_bucket = 31), sum(m.latency_bucket = 32), sum(m.latency_bucket = 33), sum(m.latency_bucket = 34), sum(m.latency_bucket = 35), sum(m.latency_bucket = 36), sum(m.latency_bucket = 37), sum(m.latency_bucket = 38), sum(m.latency_bucket = 39), sum(m.latency_bucket = 40), sum(m.latency_bucket = 41), sum(m.latency_bucket = 42), sum(m.latency_bucket = 43), sum(m.latency_bucket = 44), sum(m.latency_bucket = 45), sum(m.latency_bucket = 46), sum(m.latency_bucket = 47), sum(m.latency_bucket = 48)
FROM messages m WHERE m.latency_bucket IS NOT NULL GROUP BY 1, 2, 3, 4;
INSERT INTO latency_daily (period, provider, country, network, l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, l12, l13, l14, l15, l16, l17, l18, l19, l20, l21, l22, l23, l24, l25, l26, l27, l28, l29, l30, l31, l32, l33, l34, l35, l36, l37, l38, l39, l40, l41, l42, l43, l44, l45, l46, l47, l48)
SELECT substr(m.created_at, 1, 10), m.provider, coalesce(m.country, ''), coalesce(m.network, ''), sum(m.latency_bucket = 0), sum(m.latency_bucket = 1), sum(m.latency_bucket = 2), sum(m.latency_bucket = 3), sum(m.latency_bucket = 4), sum(m.latency_bucket = 5), sum(m.latency_bucket = 6), sum(m.latency_bucket = 7), sum(m.latency_bucket = 8), sum(m.latency_bucket = 9), sum(m.latency_bucket = 10), sum(m.latency_bucket = 11), sum(m.latency_bucket = 12), sum(m.latency_bucket = 13), sum(m.latency_bucket = 14), sum(m.latency_bucket = 15), sum(m.latency_bucket = 16), sum(m.latency_bucket = 17), sum(m.latency_bucket = 18), sum(m.latency_bucket = 19), sum(m.latency_bucket = 20), sum(m.latency_bucket = 21), sum(m.latency_bucket = 22), sum(m.latency_bucket = 23), sum(m.latency_bucket = 24), sum(m.latency_bucket = 25), sum(m.latency_bucket = 26), sum(m.latency_bucket = 27), sum(m.latency_bucket = 28), sum(m.latency_bucket = 29), sum(m.latency_bucket = 30), sum(m.latency_bucket = 31), sum(m.latency_bucket = 32), sum(m.latency_bucket = 33), sum(m.latency_bucket = 34), sum(m.latency_bucket = 35), sum(m.latency_bucket = 36), sum(m.latency_bucket = 37), sum(m.latency_bucket = 38), sum(m.latency_bucket = 39), sum(m.latency_bucket = 40), sum(m.latency_bucket = 41), sum(m.latency_bucket = 42), sum(m.latency_bucket = 43), sum(m.latency_bucket = 44), sum(m.latency_bucket = 45), sum(m.latency_bucket = 46), sum(m.latency_bucket = 47), sum(m.latency_bucket = 48)
FROM messages m WHERE m.latency_bucket IS NOT NULL GROUP BY 1, 2, 3, 4;

-- version: 11 postgresql
-- The whole schema as the SQLite sections above leave it at version 11, for
-- PostgreSQL (a PostgreSQL store starts here: there was none before). The same tables,
-- columns (in the same order), constraints and indexes, with these differences:
-- * Every TEXT column is COLLATE "C": text compares byte by byte, as in SQLite, so a
--   timestamp's text order is its time order and a ULID's its creation order,
--   whatever the database's locale.
-- * BLOB is BYTEA; INTEGER is INTEGER (32 bits: counts and flags) except the feed's
--   ids, BIGINT identities (AUTOINCREMENT: never reused).
-- * changes: several processes write changes at once, and an id drawn earlier can
--   commit later, so id order is not commit order and a reader following id could
--   step over a change committed late. `position` is the feed's cursor here: given to
--   committed changes only, by one sequencer at a time, always above every position
--   given before, even of a change since pruned (change_positions holds the highest;
--   receiver/store/postgres/feed.py). NULL: not yet given.
-- * The delivery aggregates' triggers are plpgsql. Each aggregate row also carries
--   the shard of the connection that wrote it (receiver/store/postgres/backend.py: each
--   process's writer holds its own shard, 0 for any other connection), and readers sum
--   over shards as they already sum over groups. Without it, every writing process
--   would update the same few rows of the current hour, in whatever order its batch
--   met them, holding each lock until its commit: the processes would queue behind
--   each other and deadlock.
CREATE TABLE schema_version (
    version     INTEGER NOT NULL
);

CREATE TABLE messages (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    provider            TEXT COLLATE "C" NOT NULL,
    provider_message_id TEXT COLLATE "C",
    to_number           TEXT COLLATE "C",
    status              TEXT COLLATE "C",
    status_event_id     TEXT COLLATE "C",
    status_changed_at   TEXT COLLATE "C",
    error_code          TEXT COLLATE "C",
    error_message       TEXT COLLATE "C",
    client_reference    TEXT COLLATE "C",
    report_count        INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT COLLATE "C" NOT NULL,
    updated_at          TEXT COLLATE "C" NOT NULL,
    client_id           TEXT COLLATE "C",
    sender              TEXT COLLATE "C",
    segments            INTEGER,
    erased_at           TEXT COLLATE "C",
    country             TEXT COLLATE "C",
    network             TEXT COLLATE "C",
    sent_at             TEXT COLLATE "C",
    latency_bucket      INTEGER
);
CREATE UNIQUE INDEX messages_by_provider_message_id ON messages (provider_message_id, provider);
CREATE UNIQUE INDEX messages_client_reference_per_client
    ON messages (client_id, client_reference) WHERE client_id IS NOT NULL;
CREATE INDEX messages_by_created ON messages (created_at, id);
CREATE INDEX messages_by_to ON messages (to_number, created_at);
CREATE INDEX messages_by_client_reference ON messages (client_reference, created_at);
CREATE INDEX messages_by_status ON messages (status, created_at);
CREATE INDEX messages_by_updated ON messages (updated_at, provider, status, error_code);
CREATE INDEX messages_awaiting_report ON messages (provider, updated_at)
    WHERE status IN ('queued', 'sent', 'buffered');
CREATE INDEX messages_by_country ON messages (country, created_at);
CREATE INDEX messages_by_network ON messages (network, created_at);

CREATE TABLE raw_requests (
    id          TEXT COLLATE "C" PRIMARY KEY,
    provider    TEXT COLLATE "C" NOT NULL,
    received_at TEXT COLLATE "C" NOT NULL,
    method      TEXT COLLATE "C" NOT NULL,
    path        TEXT COLLATE "C" NOT NULL,
    headers     TEXT COLLATE "C" NOT NULL,
    body        BYTEA NOT NULL
);
CREATE INDEX raw_requests_by_received_at ON raw_requests (received_at, id);

CREATE TABLE events (
    provider          TEXT COLLATE "C" NOT NULL,
    event_id          TEXT COLLATE "C" NOT NULL,
    message_id        TEXT COLLATE "C" NOT NULL REFERENCES messages (id),
    request_id        TEXT COLLATE "C" REFERENCES raw_requests (id),
    source            TEXT COLLATE "C" NOT NULL DEFAULT 'webhook'
                      CHECK (source IN ('webhook', 'outbound', 'lookup', 'receiver')),
    status            TEXT COLLATE "C",
    provider_status   TEXT COLLATE "C" NOT NULL,
    error_code        TEXT COLLATE "C",
    error_message     TEXT COLLATE "C",
    occurred_at       TEXT COLLATE "C" NOT NULL,
    received_at       TEXT COLLATE "C" NOT NULL,
    last_received_at  TEXT COLLATE "C" NOT NULL,
    outcome           TEXT COLLATE "C" NOT NULL CHECK (outcome IN ('applied', 'superseded')),
    deliveries        INTEGER NOT NULL DEFAULT 1,
    reprocessed_at    TEXT COLLATE "C",
    PRIMARY KEY (provider, event_id)
);
CREATE INDEX events_by_message ON events (message_id, occurred_at);
CREATE INDEX events_by_request ON events (request_id) WHERE request_id IS NOT NULL;

CREATE TABLE staff (
    id                     TEXT COLLATE "C" PRIMARY KEY,
    name                   TEXT COLLATE "C" NOT NULL,
    role                   TEXT COLLATE "C" NOT NULL CHECK (role IN ('viewer', 'sender', 'admin')),
    token_hash             TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at             TEXT COLLATE "C" NOT NULL,
    revoked_at             TEXT COLLATE "C",
    password_hash          TEXT COLLATE "C",
    console_sessions_after TEXT COLLATE "C"
);
CREATE UNIQUE INDEX staff_active_name ON staff (name) WHERE revoked_at IS NULL;

CREATE TABLE idempotency_keys (
    client_id    TEXT COLLATE "C" NOT NULL,
    key          TEXT COLLATE "C" NOT NULL,
    fingerprint  TEXT COLLATE "C" NOT NULL,
    status_code  INTEGER NOT NULL,
    response     TEXT COLLATE "C" NOT NULL,
    message_id   TEXT COLLATE "C" REFERENCES messages (id),
    created_at   TEXT COLLATE "C" NOT NULL,
    expires_at   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (client_id, key)
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
CREATE INDEX idempotency_keys_by_message ON idempotency_keys (message_id)
    WHERE message_id IS NOT NULL;

CREATE TABLE outbox (
    message_id       TEXT COLLATE "C" PRIMARY KEY REFERENCES messages (id),
    provider         TEXT COLLATE "C" NOT NULL,
    body             TEXT COLLATE "C",
    template         TEXT COLLATE "C",
    state            TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending', 'sending', 'done', 'held')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    in_doubt         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT COLLATE "C" NOT NULL,
    first_attempt_at TEXT COLLATE "C",
    lease_owner      TEXT COLLATE "C",
    lease_until      TEXT COLLATE "C",
    last_error       TEXT COLLATE "C",
    created_at       TEXT COLLATE "C" NOT NULL,
    updated_at       TEXT COLLATE "C" NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

CREATE TABLE erasures (
    id            TEXT COLLATE "C" PRIMARY KEY,
    erased_at     TEXT COLLATE "C" NOT NULL,
    requested_by  TEXT COLLATE "C" NOT NULL,
    messages      INTEGER NOT NULL,
    raw_requests  INTEGER NOT NULL
);

CREATE TABLE changes (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    change_id       TEXT COLLATE "C" NOT NULL,
    message_id      TEXT COLLATE "C" NOT NULL,
    seq             INTEGER NOT NULL,
    previous_status TEXT COLLATE "C",
    status          TEXT COLLATE "C",
    error_code      TEXT COLLATE "C",
    error_message   TEXT COLLATE "C",
    changed_at      TEXT COLLATE "C" NOT NULL,
    cause_source    TEXT COLLATE "C" NOT NULL,
    cause_event_id  TEXT COLLATE "C",
    message         TEXT COLLATE "C" NOT NULL,
    position        BIGINT,
    UNIQUE (message_id, seq)
);
CREATE UNIQUE INDEX changes_by_position ON changes (position);
CREATE INDEX changes_to_sequence ON changes (id) WHERE position IS NULL;
CREATE TABLE change_positions (
    position BIGINT NOT NULL
);
INSERT INTO change_positions (position) VALUES (0);

CREATE TABLE subscribers (
    name               TEXT COLLATE "C" PRIMARY KEY,
    providers          TEXT COLLATE "C",
    statuses           TEXT COLLATE "C",
    clients            TEXT COLLATE "C",
    disabled_at        TEXT COLLATE "C",
    disabled_reason    TEXT COLLATE "C",
    last_error         TEXT COLLATE "C",
    last_error_at      TEXT COLLATE "C",
    worker             TEXT COLLATE "C",
    worker_until       TEXT COLLATE "C",
    worker_lease_until TEXT COLLATE "C"
);

CREATE TABLE change_deliveries (
    subscriber      TEXT COLLATE "C" NOT NULL,
    change          BIGINT NOT NULL REFERENCES changes (id),
    message_id      TEXT COLLATE "C" NOT NULL,
    seq             INTEGER NOT NULL,
    state           TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending', 'sending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT COLLATE "C" NOT NULL,
    lease_owner     TEXT COLLATE "C",
    lease_until     TEXT COLLATE "C",
    last_error      TEXT COLLATE "C",
    queued_at       TEXT COLLATE "C" NOT NULL,
    delivered_at    TEXT COLLATE "C",
    PRIMARY KEY (subscriber, change)
);
CREATE INDEX change_deliveries_due ON change_deliveries (subscriber, state, next_attempt_at);
CREATE INDEX change_deliveries_by_message ON change_deliveries (subscriber, message_id, seq);

CREATE TABLE lookups (
    message_id    TEXT COLLATE "C" PRIMARY KEY,
    provider      TEXT COLLATE "C" NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       TEXT COLLATE "C" NOT NULL,
    lease_owner   TEXT COLLATE "C",
    lease_until   TEXT COLLATE "C",
    claimed_at    TEXT COLLATE "C",
    last_outcome  TEXT COLLATE "C"
                  CHECK (last_outcome IN ('pending', 'failed', 'not_found', 'no_lookup')),
    last_error    TEXT COLLATE "C",
    last_at       TEXT COLLATE "C"
);

CREATE TABLE delivery_hourly (
    period    TEXT COLLATE "C" NOT NULL,
    provider  TEXT COLLATE "C" NOT NULL,
    country   TEXT COLLATE "C" NOT NULL,
    network   TEXT COLLATE "C" NOT NULL,
    status    TEXT COLLATE "C" NOT NULL,
    shard     INTEGER NOT NULL,
    messages  INTEGER NOT NULL,
    PRIMARY KEY (period, provider, country, network, status, shard)
);
CREATE TABLE delivery_daily (LIKE delivery_hourly INCLUDING ALL);
CREATE TABLE latency_hourly (
    period    TEXT COLLATE "C" NOT NULL,
    provider  TEXT COLLATE "C" NOT NULL,
    country   TEXT COLLATE "C" NOT NULL,
    network   TEXT COLLATE "C" NOT NULL,
    shard     INTEGER NOT NULL,
    l0 INTEGER NOT NULL DEFAULT 0,
    l1 INTEGER NOT NULL DEFAULT 0,
    l2 INTEGER NOT NULL DEFAULT 0,
    l3 INTEGER NOT NULL DEFAULT 0,
    l4 INTEGER NOT NULL DEFAULT 0,
    l5 INTEGER NOT NULL DEFAULT 0,
    l6 INTEGER NOT NULL DEFAULT 0,
    l7 INTEGER NOT NULL DEFAULT 0,
    l8 INTEGER NOT NULL DEFAULT 0,
    l9 INTEGER NOT NULL DEFAULT 0,
    l10 INTEGER NOT NULL DEFAULT 0,
    l11 INTEGER NOT NULL DEFAULT 0,
    l12 INTEGER NOT NULL DEFAULT 0,
    l13 INTEGER NOT NULL DEFAULT 0,
    l14 INTEGER NOT NULL DEFAULT 0,
    l15 INTEGER NOT NULL DEFAULT 0,
    l16 INTEGER NOT NULL DEFAULT 0,
    l17 INTEGER NOT NULL DEFAULT 0,
    l18 INTEGER NOT NULL DEFAULT 0,
    l19 INTEGER NOT NULL DEFAULT 0,
    l20 INTEGER NOT NULL DEFAULT 0,
    l21 INTEGER NOT NULL DEFAULT 0,
    l22 INTEGER NOT NULL DEFAULT 0,
    l23 INTEGER NOT NULL DEFAULT 0,
    l24 INTEGER NOT NULL DEFAULT 0,
    l25 INTEGER NOT NULL DEFAULT 0,
    l26 INTEGER NOT NULL DEFAULT 0,
    l27 INTEGER NOT NULL DEFAULT 0,
    l28 INTEGER NOT NULL DEFAULT 0,
    l29 INTEGER NOT NULL DEFAULT 0,
    l30 INTEGER NOT NULL DEFAULT 0,
    l31 INTEGER NOT NULL DEFAULT 0,
    l32 INTEGER NOT NULL DEFAULT 0,
    l33 INTEGER NOT NULL DEFAULT 0,
    l34 INTEGER NOT NULL DEFAULT 0,
    l35 INTEGER NOT NULL DEFAULT 0,
    l36 INTEGER NOT NULL DEFAULT 0,
    l37 INTEGER NOT NULL DEFAULT 0,
    l38 INTEGER NOT NULL DEFAULT 0,
    l39 INTEGER NOT NULL DEFAULT 0,
    l40 INTEGER NOT NULL DEFAULT 0,
    l41 INTEGER NOT NULL DEFAULT 0,
    l42 INTEGER NOT NULL DEFAULT 0,
    l43 INTEGER NOT NULL DEFAULT 0,
    l44 INTEGER NOT NULL DEFAULT 0,
    l45 INTEGER NOT NULL DEFAULT 0,
    l46 INTEGER NOT NULL DEFAULT 0,
    l47 INTEGER NOT NULL DEFAULT 0,
    l48 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (period, provider, country, network, shard)
);
CREATE TABLE latency_daily (LIKE latency_hourly INCLUDING ALL);

-- The shard this connection writes the aggregates in (see above).
CREATE FUNCTION delivery_shard() RETURNS INTEGER LANGUAGE sql STABLE
    RETURN coalesce(nullif(current_setting('receiver.shard', true), '')::INTEGER, 0);

-- Count message m in (delta 1) or out of (delta -1) its hour's and day's status cell.
CREATE FUNCTION delivery_count(m messages, delta INTEGER) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    writer_shard INTEGER := delivery_shard();
BEGIN
    INSERT INTO delivery_hourly (period, provider, country, network, status, shard, messages)
    VALUES (substr(m.created_at, 1, 13), m.provider, coalesce(m.country, ''), coalesce(m.network, ''), coalesce(m.status, ''), writer_shard, delta)
    ON CONFLICT (period, provider, country, network, status, shard) DO UPDATE SET messages = delivery_hourly.messages + excluded.messages;
    INSERT INTO delivery_daily (period, provider, country, network, status, shard, messages)
    VALUES (substr(m.created_at, 1, 10), m.provider, coalesce(m.country, ''), coalesce(m.network, ''), coalesce(m.status, ''), writer_shard, delta)
    ON CONFLICT (period, provider, country, network, status, shard) DO UPDATE SET messages = delivery_daily.messages + excluded.messages;
END $$;

-- The same for its latency bucket, if it has one.
CREATE FUNCTION latency_count(m messages, delta INTEGER) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    writer_shard INTEGER := delivery_shard();
BEGIN
    IF m.latency_bucket IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO latency_hourly (period, provider, country, network, shard, l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, l12, l13, l14, l15, l16, l17, l18, l19, l20, l21, l22, l23, l24, l25, l26, l27, l28, l29, l30, l31, l32, l33, l34, l35, l36, l37, l38, l39, l40, l41, l42, l43, l44, l45, l46, l47, l48)
    VALUES (substr(m.created_at, 1, 13), m.provider, coalesce(m.country, ''), coalesce(m.network, ''), writer_shard,
        (m.latency_bucket = 0)::int * delta, (m.latency_bucket = 1)::int * delta, (m.latency_bucket = 2)::int * delta, (m.latency_bucket = 3)::int * delta, (m.latency_bucket = 4)::int * delta, (m.latency_bucket = 5)::int * delta, (m.latency_bucket = 6)::int * delta, (m.latency_bucket = 7)::int * delta, (m.latency_bucket = 8)::int * delta, (m.latency_bucket = 9)::int * delta, (m.latency_bucket = 10)::int * delta, (m.latency_bucket = 11)::int * delta, (m.latency_bucket = 12)::int * delta, (m.latency_bucket = 13)::int * delta, (m.latency_bucket = 14)::int * delta, (m.latency_bucket = 15)::int * delta, (m.latency_bucket = 16)::int * delta, (m.latency_bucket = 17)::int * delta, (m.latency_bucket = 18)::int * delta, (m.latency_bucket = 19)::int * delta, (m.latency_bucket = 20)::int * delta, (m.latency_bucket = 21)::int * delta, (m.latency_bucket = 22)::int * delta, (m.latency_bucket = 23)::int * delta, (m.latency_bucket = 24)::int * delta, (m.latency_bucket = 25)::int * delta, (m.latency_bucket = 26)::int * delta, (m.latency_bucket = 27)::int * delta, (m.latency_bucket = 28)::int * delta, (m.latency_bucket = 29)::int * delta, (m.latency_bucket = 30)::int * delta, (m.latency_bucket = 31)::int * delta, (m.latency_bucket = 32)::int * delta, (m.latency_bucket = 33)::int * delta, (m.latency_bucket = 34)::int * delta, (m.latency_bucket = 35)::int * delta, (m.latency_bucket = 36)::int * delta, (m.latency_bucket = 37)::int * delta, (m.latency_bucket = 38)::int * delta, (m.latency_bucket = 39)::int * delta, (m.latency_bucket = 40)::int * delta, (m.latency_bucket = 41)::int * delta, (m.latency_bucket = 42)::int * delta, (m.latency_bucket = 43)::int * delta, (m.latency_bucket = 44)::int * delta, (m.latency_bucket = 45)::int * delta, (m.latency_bucket = 46)::int * delta, (m.latency_bucket = 47)::int * delta, (m.latency_bucket = 48)::int * delta)
    ON CONFLICT (period, provider, country, network, shard) DO UPDATE SET l0 = latency_hourly.l0 + excluded.l0, l1 = latency_hourly.l1 + excluded.l1, l2 = latency_hourly.l2 + excluded.l2, l3 = latency_hourly.l3 + excluded.l3, l4 = latency_hourly.l4 + excluded.l4, l5 = latency_hourly.l5 + excluded.l5, l6 = latency_hourly.l6 + excluded.l6, l7 = latency_hourly.l7 + excluded.l7, l8 = latency_hourly.l8 + excluded.l8, l9 = latency_hourly.l9 + excluded.l9, l10 = latency_hourly.l10 + excluded.l10, l11 = latency_hourly.l11 + excluded.l11, l12 = latency_hourly.l12 + excluded.l12, l13 = latency_hourly.l13 + excluded.l13, l14 = latency_hourly.l14 + excluded.l14, l15 = latency_hourly.l15 + excluded.l15, l16 = latency_hourly.l16 + excluded.l16, l17 = latency_hourly.l17 + excluded.l17, l18 = latency_hourly.l18 + excluded.l18, l19 = latency_hourly.l19 + excluded.l19, l20 = latency_hourly.l20 + excluded.l20, l21 = latency_hourly.l21 + excluded.l21, l22 = latency_hourly.l22 + excluded.l22, l23 = latency_hourly.l23 + excluded.l23, l24 = latency_hourly.l24 + excluded.l24, l25 = latency_hourly.l25 + excluded.l25, l26 = latency_hourly.l26 + excluded.l26, l27 = latency_hourly.l27 + excluded.l27, l28 = latency_hourly.l28 + excluded.l28, l29 = latency_hourly.l29 + excluded.l29, l30 = latency_hourly.l30 + excluded.l30, l31 = latency_hourly.l31 + excluded.l31, l32 = latency_hourly.l32 + excluded.l32, l33 = latency_hourly.l33 + excluded.l33, l34 = latency_hourly.l34 + excluded.l34, l35 = latency_hourly.l35 + excluded.l35, l36 = latency_hourly.l36 + excluded.l36, l37 = latency_hourly.l37 + excluded.l37, l38 = latency_hourly.l38 + excluded.l38, l39 = latency_hourly.l39 + excluded.l39, l40 = latency_hourly.l40 + excluded.l40, l41 = latency_hourly.l41 + excluded.l41, l42 = latency_hourly.l42 + excluded.l42, l43 = latency_hourly.l43 + excluded.l43, l44 = latency_hourly.l44 + excluded.l44, l45 = latency_hourly.l45 + excluded.l45, l46 = latency_hourly.l46 + excluded.l46, l47 = latency_hourly.l47 + excluded.l47, l48 = latency_hourly.l48 + excluded.l48;
    INSERT INTO latency_daily (period, provider, country, network, shard, l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, l12, l13, l14, l15, l16, l17, l18, l19, l20, l21, l22, l23, l24, l25, l26, l27, l28, l29, l30, l31, l32, l33, l34, l35, l36, l37, l38, l39, l40, l41, l42, l43, l44, l45, l46, l47, l48)
    VALUES (substr(m.created_at, 1, 10), m.provider, coalesce(m.country, ''), coalesce(m.network, ''), writer_shard,
        (m.latency_bucket = 0)::int * delta, (m.latency_bucket = 1)::int * delta, (m.latency_bucket = 2)::int * delta, (m.latency_bucket = 3)::int * delta, (m.latency_bucket = 4)::int * delta, (m.latency_bucket = 5)::int * delta, (m.latency_bucket = 6)::int * delta, (m.latency_bucket = 7)::int * delta, (m.latency_bucket = 8)::int * delta, (m.latency_bucket = 9)::int * delta, (m.latency_bucket = 10)::int * delta, (m.latency_bucket = 11)::int * delta, (m.latency_bucket = 12)::int * delta, (m.latency_bucket = 13)::int * delta, (m.latency_bucket = 14)::int * delta, (m.latency_bucket = 15)::int * delta, (m.latency_bucket = 16)::int * delta, (m.latency_bucket = 17)::int * delta, (m.latency_bucket = 18)::int * delta, (m.latency_bucket = 19)::int * delta, (m.latency_bucket = 20)::int * delta, (m.latency_bucket = 21)::int * delta, (m.latency_bucket = 22)::int * delta, (m.latency_bucket = 23)::int * delta, (m.latency_bucket = 24)::int * delta, (m.latency_bucket = 25)::int * delta, (m.latency_bucket = 26)::int * delta, (m.latency_bucket = 27)::int * delta, (m.latency_bucket = 28)::int * delta, (m.latency_bucket = 29)::int * delta, (m.latency_bucket = 30)::int * delta, (m.latency_bucket = 31)::int * delta, (m.latency_bucket = 32)::int * delta, (m.latency_bucket = 33)::int * delta, (m.latency_bucket = 34)::int * delta, (m.latency_bucket = 35)::int * delta, (m.latency_bucket = 36)::int * delta, (m.latency_bucket = 37)::int * delta, (m.latency_bucket = 38)::int * delta, (m.latency_bucket = 39)::int * delta, (m.latency_bucket = 40)::int * delta, (m.latency_bucket = 41)::int * delta, (m.latency_bucket = 42)::int * delta, (m.latency_bucket = 43)::int * delta, (m.latency_bucket = 44)::int * delta, (m.latency_bucket = 45)::int * delta, (m.latency_bucket = 46)::int * delta, (m.latency_bucket = 47)::int * delta, (m.latency_bucket = 48)::int * delta)
    ON CONFLICT (period, provider, country, network, shard) DO UPDATE SET l0 = latency_daily.l0 + excluded.l0, l1 = latency_daily.l1 + excluded.l1, l2 = latency_daily.l2 + excluded.l2, l3 = latency_daily.l3 + excluded.l3, l4 = latency_daily.l4 + excluded.l4, l5 = latency_daily.l5 + excluded.l5, l6 = latency_daily.l6 + excluded.l6, l7 = latency_daily.l7 + excluded.l7, l8 = latency_daily.l8 + excluded.l8, l9 = latency_daily.l9 + excluded.l9, l10 = latency_daily.l10 + excluded.l10, l11 = latency_daily.l11 + excluded.l11, l12 = latency_daily.l12 + excluded.l12, l13 = latency_daily.l13 + excluded.l13, l14 = latency_daily.l14 + excluded.l14, l15 = latency_daily.l15 + excluded.l15, l16 = latency_daily.l16 + excluded.l16, l17 = latency_daily.l17 + excluded.l17, l18 = latency_daily.l18 + excluded.l18, l19 = latency_daily.l19 + excluded.l19, l20 = latency_daily.l20 + excluded.l20, l21 = latency_daily.l21 + excluded.l21, l22 = latency_daily.l22 + excluded.l22, l23 = latency_daily.l23 + excluded.l23, l24 = latency_daily.l24 + excluded.l24, l25 = latency_daily.l25 + excluded.l25, l26 = latency_daily.l26 + excluded.l26, l27 = latency_daily.l27 + excluded.l27, l28 = latency_daily.l28 + excluded.l28, l29 = latency_daily.l29 + excluded.l29, l30 = latency_daily.l30 + excluded.l30, l31 = latency_daily.l31 + excluded.l31, l32 = latency_daily.l32 + excluded.l32, l33 = latency_daily.l33 + excluded.l33, l34 = latency_daily.l34 + excluded.l34, l35 = latency_daily.l35 + excluded.l35, l36 = latency_daily.l36 + excluded.l36, l37 = latency_daily.l37 + excluded.l37, l38 = latency_daily.l38 + excluded.l38, l39 = latency_daily.l39 + excluded.l39, l40 = latency_daily.l40 + excluded.l40, l41 = latency_daily.l41 + excluded.l41, l42 = latency_daily.l42 + excluded.l42, l43 = latency_daily.l43 + excluded.l43, l44 = latency_daily.l44 + excluded.l44, l45 = latency_daily.l45 + excluded.l45, l46 = latency_daily.l46 + excluded.l46, l47 = latency_daily.l47 + excluded.l47, l48 = latency_daily.l48 + excluded.l48;
END $$;

CREATE FUNCTION delivery_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM delivery_count(OLD, -1);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM delivery_count(NEW, 1);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION delivery_latency() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM latency_count(OLD, -1);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM latency_count(NEW, 1);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER delivery_stats_insert_delete AFTER INSERT OR DELETE ON messages
FOR EACH ROW EXECUTE FUNCTION delivery_stats();
CREATE TRIGGER delivery_stats_update
AFTER UPDATE OF created_at, provider, country, network, status ON messages
FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at OR OLD.provider IS DISTINCT FROM NEW.provider
    OR OLD.country IS DISTINCT FROM NEW.country OR OLD.network IS DISTINCT FROM NEW.network
    OR OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION delivery_stats();
CREATE TRIGGER delivery_latency_insert_delete AFTER INSERT OR DELETE ON messages
FOR EACH ROW EXECUTE FUNCTION delivery_latency();
CREATE TRIGGER delivery_latency_update
AFTER UPDATE OF created_at, provider, country, network, latency_bucket ON messages
FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at OR OLD.provider IS DISTINCT FROM NEW.provider
    OR OLD.country IS DISTINCT FROM NEW.country OR OLD.network IS DISTINCT FROM NEW.network
    OR OLD.latency_bucket IS DISTINCT FROM NEW.latency_bucket)
EXECUTE FUNCTION delivery_latency();
