-- 0011 (PostgreSQL): the ledger's two hot operations as server-side functions, so that each
-- is one call, one statement and one transaction (as before) but skips the work a data-modifying
-- CTE cannot: a reserve that cannot pay stops after its debit, and a settle that refunds nothing
-- never touches the account or the ledger. The schema, its constraints, triggers and unique
-- indexes are unchanged; they check every row these functions write.

-- Debit, hold, line items and spend row. The debit is the conditional UPDATE that no two
-- processes can both pass on the last credits (the second waits for the row lock and re-checks
-- the balance); nothing else is written unless it matched. Both outputs are NULL when the
-- account does not exist or cannot pay.
CREATE FUNCTION ledger_reserve(
    p_guild bigint, p_user bigint, p_amount bigint, p_comparison text, p_now timestamptz,
    p_models text[], p_labels text[], p_credits bigint[], p_reason text,
    OUT new_hold_id bigint, OUT new_balance bigint
) LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts AS a SET balance = a.balance - p_amount
    WHERE a.guild_id = p_guild AND a.user_id = p_user AND a.balance >= p_amount
    RETURNING a.balance INTO new_balance;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO holds (guild_id, user_id, comparison_id, amount, created_at)
    VALUES (p_guild, p_user, p_comparison, p_amount, p_now)
    RETURNING id INTO new_hold_id;
    INSERT INTO hold_items (hold_id, position, model_id, label, credits)
    SELECT new_hold_id, item.position - 1, item.model_id, item.label, item.credits
    FROM unnest(p_models, p_labels, p_credits) WITH ORDINALITY
         AS item (model_id, label, credits, position);
    IF p_amount > 0 THEN
        INSERT INTO ledger (guild_id, user_id, delta, kind, reason, actor_id, comparison_id,
                            hold_id, created_at)
        VALUES (p_guild, p_user, -p_amount, 'spend', p_reason, p_user, p_comparison,
                new_hold_id, p_now);
    END IF;
END;
$$;

-- Close an open hold: its state and amounts, each item's outcome, the refund to the account
-- and one ledger row per refunded model (p_refund_*; credits of 0 write no row). The guard is
-- `state = 'open'`: of two racing closes the second waits for the first's row lock, re-checks,
-- matches nothing and returns NULL having written nothing. Otherwise: the balance after it.
CREATE FUNCTION ledger_close_hold(
    p_hold bigint, p_state text, p_charged bigint, p_refunded bigint, p_now timestamptz,
    p_models text[], p_outcomes text[], p_reasons text[], p_kind text,
    p_refund_models text[], p_refund_credits bigint[], p_refund_reasons text[]
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_guild bigint;
    v_user bigint;
    v_comparison text;
    v_balance bigint;
BEGIN
    UPDATE holds SET state = p_state, charged = p_charged, refunded = p_refunded,
                     closed_at = p_now
    WHERE id = p_hold AND state = 'open'
    RETURNING guild_id, user_id, comparison_id INTO v_guild, v_user, v_comparison;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    UPDATE hold_items AS i
    SET outcome = p_outcomes[array_position(p_models, i.model_id)],
        reason = p_reasons[array_position(p_models, i.model_id)]
    WHERE i.hold_id = p_hold;
    IF p_refunded > 0 THEN
        UPDATE accounts AS a SET balance = a.balance + p_refunded
        WHERE a.guild_id = v_guild AND a.user_id = v_user
        RETURNING a.balance INTO v_balance;
        INSERT INTO ledger (guild_id, user_id, delta, kind, reason, comparison_id, hold_id,
                            model_id, created_at)
        SELECT v_guild, v_user, r.credits, p_kind, r.reason, v_comparison, p_hold, r.model_id,
               p_now
        FROM unnest(p_refund_models, p_refund_credits, p_refund_reasons)
             AS r (model_id, credits, reason)
        WHERE r.credits > 0;
    ELSE
        -- Nothing refunded (the common case) leaves the account row alone.
        SELECT a.balance INTO v_balance FROM accounts AS a
        WHERE a.guild_id = v_guild AND a.user_id = v_user;
    END IF;
    RETURN v_balance;
END;
$$;
