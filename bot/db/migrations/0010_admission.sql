-- 0010: per-member admission shared by every process on this database. A member's row holds
-- the start their cooldown counts from; each running comparison holds one ticket until it ends.
-- A ticket carries a lease: one left behind by a process that died stops counting when it
-- expires (and its own process clears it on restart). Tickets are counted by member, not
-- joined to the member's row, so forgetting an idle member never trips over a new ticket.
-- Not copied by migrate-to-postgres: tickets and cooldowns mean nothing once the bot stops.

CREATE TABLE admission_members (
    guild_id   INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    last_start TEXT,  -- UTC ISO-8601; NULL: no cooldown running
    PRIMARY KEY (guild_id, user_id)
) WITHOUT ROWID;

CREATE TABLE admission_tickets (
    ticket_id      TEXT    PRIMARY KEY,
    guild_id       INTEGER NOT NULL,
    user_id        INTEGER NOT NULL,
    owner          TEXT    NOT NULL,  -- the process that claimed it
    started_at     TEXT    NOT NULL,
    expires_at     TEXT    NOT NULL CHECK (expires_at > started_at),
    cooldown_start TEXT,              -- the start this ticket set; NULL: it set none
    previous_start TEXT               -- the start it replaced, given back with the ticket
) WITHOUT ROWID;

CREATE INDEX admission_tickets_member ON admission_tickets (guild_id, user_id, expires_at);
CREATE INDEX admission_tickets_owner ON admission_tickets (owner);
CREATE INDEX admission_tickets_expiry ON admission_tickets (expires_at);
