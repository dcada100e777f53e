-- 0004 (PostgreSQL): a counter per server that moves whenever anything its leaderboard reads
-- changes, as SQLite's 0004 (and the delivery/kind trigger of its 0005). Each process caches
-- its fitted boards against this number, so a vote cast through another process (or the CLI)
-- invalidates them all. One trigger function, fired by every write a board reads.

CREATE TABLE board_generations (
    guild_id   bigint PRIMARY KEY,
    generation bigint NOT NULL DEFAULT 0
);

CREATE FUNCTION bump_board_generation(guild bigint) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO board_generations (guild_id, generation) VALUES (guild, 1)
    ON CONFLICT (guild_id) DO UPDATE SET generation = board_generations.generation + 1
$$;

-- Comparisons: the guild is on the row itself (both guilds when an update moves it).
CREATE FUNCTION board_on_comparison() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM bump_board_generation(OLD.guild_id);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.guild_id <> OLD.guild_id) THEN
        PERFORM bump_board_generation(NEW.guild_id);
    END IF;
    RETURN NULL;
END
$$;

-- Panels and votes: the guild is their comparison's.
CREATE FUNCTION board_on_child() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM bump_board_generation(guild_id) FROM comparisons WHERE id = OLD.comparison_id;
    END IF;
    IF TG_OP = 'INSERT'
        OR (TG_OP = 'UPDATE' AND NEW.comparison_id <> OLD.comparison_id) THEN
        PERFORM bump_board_generation(guild_id) FROM comparisons WHERE id = NEW.comparison_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER board_on_comparison_insert AFTER INSERT OR DELETE ON comparisons
FOR EACH ROW EXECUTE FUNCTION board_on_comparison();
-- Only the columns ratings read: attaching a message id or an image hash moves nothing.
CREATE TRIGGER board_on_comparison_update
AFTER UPDATE OF guild_id, use_case, blind, demo, state ON comparisons
FOR EACH ROW EXECUTE FUNCTION board_on_comparison();
CREATE TRIGGER board_on_panel AFTER INSERT OR UPDATE OR DELETE ON panels
FOR EACH ROW EXECUTE FUNCTION board_on_child();
CREATE TRIGGER board_on_vote AFTER INSERT OR UPDATE OR DELETE ON votes
FOR EACH ROW EXECUTE FUNCTION board_on_child();
