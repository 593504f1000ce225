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
