-- 0004: a counter per server that moves whenever anything its leaderboard reads changes.
-- The vote store caches each server's fitted ratings against this number, so a board is refit
-- only after a change, whoever made it: a vote, a close, a new or deleted comparison, another
-- process sharing the file. Reading it is one primary-key lookup.

CREATE TABLE board_generations (
    guild_id   INTEGER PRIMARY KEY,
    generation INTEGER NOT NULL DEFAULT 0
);

CREATE TRIGGER board_on_comparison_insert AFTER INSERT ON comparisons
BEGIN
    INSERT INTO board_generations (guild_id, generation) VALUES (NEW.guild_id, 1)
    ON CONFLICT (guild_id) DO UPDATE SET generation = generation + 1;
END;

-- Only the columns ratings read: attaching a message id or an image hash moves nothing.
CREATE TRIGGER board_on_comparison_update
AFTER UPDATE OF guild_id, use_case, blind, demo, state ON comparisons
BEGIN
    INSERT INTO board_generations (guild_id, generation)
    SELECT guild_id, 1 FROM (SELECT OLD.guild_id AS guild_id UNION SELECT NEW.guild_id) WHERE true
    ON CONFLICT (guild_id) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER board_on_comparison_delete AFTER DELETE ON comparisons
BEGIN
    INSERT INTO board_generations (guild_id, generation) VALUES (OLD.guild_id, 1)
    ON CONFLICT (guild_id) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER board_on_panel_insert AFTER INSERT ON panels
BEGIN
    INSERT INTO board_generations (guild_id, generation)
    SELECT guild_id, 1 FROM comparisons WHERE id = NEW.comparison_id
    ON CONFLICT (guild_id) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER board_on_panel_update AFTER UPDATE ON panels
BEGIN
    INSERT INTO board_generations (guild_id, generation)
    SELECT guild_id, 1 FROM comparisons WHERE id IN (OLD.comparison_id, NEW.comparison_id)
    ON CONFLICT (guild_id) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER board_on_panel_delete AFTER DELETE ON panels
BEGIN
    INSERT INTO board_generations (guild_id, generation)
    SELECT guild_id, 1 FROM comparisons WHERE id = OLD.comparison_id
    ON CONFLICT (guild_id) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER board_on_vote_insert AFTER INSERT ON votes
BEGIN
    INSERT INTO board_generations (guild_id, generation)
    SELECT guild_id, 1 FROM comparisons WHERE id = NEW.comparison_id
    ON CONFLICT (guild_id) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER board_on_vote_update AFTER UPDATE ON votes
BEGIN
    INSERT INTO board_generations (guild_id, generation)
    SELECT guild_id, 1 FROM comparisons WHERE id IN (OLD.comparison_id, NEW.comparison_id)
    ON CONFLICT (guild_id) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER board_on_vote_delete AFTER DELETE ON votes
BEGIN
    INSERT INTO board_generations (guild_id, generation)
    SELECT guild_id, 1 FROM comparisons WHERE id = OLD.comparison_id
    ON CONFLICT (guild_id) DO UPDATE SET generation = generation + 1;
END;
