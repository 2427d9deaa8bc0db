-- Joins of different livestreams share a statement (and a commit), without waiting on a row.
--
-- join_livestreams (0005) runs the joins of one livestream that arrive together; the API kept one
-- batch per livestream because a batch waits on each livestream's row lock, and a livestream held
-- for seconds (a long end) must not hold up the joins of the others. So joins spread over several
-- livestreams each paid a commit of their own. Measured (bench `join`, 32 callers, same run):
-- 400-490 joins/s (0.21-0.24 of the echo) over 8 livestreams, 670-680/s (0.34-0.39) when all 32
-- joined one livestream and so shared commits.
--
-- try_join_livestreams is join_livestreams that never waits on a livestream row: each join first
-- takes its livestream's lock with SKIP LOCKED (a row already locked by this statement is not
-- skipped), and a join whose livestream is held by another transaction comes back BUSY, with
-- nothing written for it; the API then runs it in that livestream's own batch, which waits for the
-- lock (favorited/store/database.py). Any other lock (an idempotency key or a participant key
-- another transaction is inserting) it waits for 100 ms at most: while it waits, the batch holds
-- the rows of the livestreams it already joined and the API process's one join lane. Past that
-- the statement fails whole with lock_not_available (nothing kept), each join is retried alone,
-- and one that meets the lock again counts as held and waits in its livestream's own lane.
CREATE FUNCTION try_join_livestreams(
    p_participant_ids uuid[], p_livestream_ids uuid[], p_user_ids text[],
    p_display_names text[], p_roles text[], p_metadata text[], p_request_ids text[],
    p_request_ttl_s double precision[]
) RETURNS SETOF join_result LANGUAGE plpgsql AS $$
BEGIN
    -- For this statement's transaction only (autocommit: this statement).
    PERFORM set_config('lock_timeout', '100ms', true);
    FOR i IN 1 .. coalesce(array_length(p_participant_ids, 1), 0) LOOP
        PERFORM 1 FROM livestreams WHERE id = p_livestream_ids[i] FOR NO KEY UPDATE SKIP LOCKED;
        -- Not locked: either another transaction holds the row, or there is no such livestream
        -- (join_livestream answers NOT_FOUND for that).
        IF NOT FOUND AND EXISTS (SELECT 1 FROM livestreams WHERE id = p_livestream_ids[i]) THEN
            RETURN NEXT ROW('BUSY', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                            NULL, NULL, NULL, NULL, NULL)::join_result;
            CONTINUE;
        END IF;
        -- join_livestream locks the row again: it is ours, so that does not wait.
        RETURN NEXT join_livestream(
            p_participant_ids[i], p_livestream_ids[i], p_user_ids[i], p_display_names[i],
            p_roles[i]::participant_role, p_metadata[i]::jsonb, p_request_ids[i],
            p_request_ttl_s[i]);
    END LOOP;
END;
$$;
