-- 0010 (PostgreSQL): per-member admission shared by every process, as SQLite's 0010. A claim
-- locks the member's row, so two processes admitting one member serialise on it.

CREATE TABLE admission_members (
    guild_id   bigint      NOT NULL,
    user_id    bigint      NOT NULL,
    last_start timestamptz,  -- NULL: no cooldown running
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE admission_tickets (
    ticket_id      text        PRIMARY KEY,
    guild_id       bigint      NOT NULL,
    user_id        bigint      NOT NULL,
    owner          text        NOT NULL,  -- the process that claimed it
    started_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL CHECK (expires_at > started_at),
    cooldown_start timestamptz,           -- the start this ticket set; NULL: it set none
    previous_start timestamptz            -- the start it replaced, given back with the ticket
);

CREATE INDEX admission_tickets_member ON admission_tickets (guild_id, user_id, expires_at);
CREATE INDEX admission_tickets_owner ON admission_tickets (owner);
CREATE INDEX admission_tickets_expiry ON admission_tickets (expires_at);
