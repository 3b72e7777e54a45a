-- Version 13, in step with SQLite's schema_13_webhooks.sql: webhooks (issue #19): the operator's endpoints, the programme's events as an outbox
-- written in the transaction that made them, and each event's delivery to each endpoint.

-- `events`: the event types it receives, comma-separated (empty: all). A paused endpoint keeps
-- its deliveries queued. `secret`: the signing secret (`whsec_` and base64).
CREATE TABLE webhook_endpoint (
    id          TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    events      TEXT NOT NULL,
    description TEXT,
    paused      BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);

-- An event, written only when an endpoint receives its type. `seq` is its place in the
-- programme's sequence (deliveries of one member follow it).
CREATE TABLE webhook_event (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    member_id  TEXT NOT NULL,
    type       TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_event_member ON webhook_event (member_id);

-- One event's delivery to one endpoint: `waiting` behind the member's earlier delivery to the
-- endpoint, `pending` (the member's next: due at `due_at`; in flight while a dispatcher holds
-- its lease), `delivered`, or `dead` (every attempt failed). When a pending delivery ends, the
-- member's next waiting one becomes pending: a claim reads due pending rows only.
CREATE TABLE webhook_delivery (
    endpoint_id  TEXT NOT NULL REFERENCES webhook_endpoint (id) ON DELETE CASCADE,
    event_seq    BIGINT NOT NULL REFERENCES webhook_event (seq) ON DELETE CASCADE,
    member_id    TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',
    attempts     BIGINT NOT NULL DEFAULT 0,
    due_at       BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    last_status  BIGINT,
    last_error   TEXT,
    delivered_at BIGINT,
    PRIMARY KEY (endpoint_id, event_seq)
);
CREATE INDEX webhook_delivery_queue ON webhook_delivery (endpoint_id, member_id, event_seq)
    WHERE state IN ('pending', 'waiting');
CREATE INDEX webhook_delivery_due ON webhook_delivery (due_at) WHERE state = 'pending';
CREATE INDEX webhook_delivery_state ON webhook_delivery (endpoint_id, state, event_seq);
CREATE INDEX webhook_delivery_event ON webhook_delivery (event_seq);
