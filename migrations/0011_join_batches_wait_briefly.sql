-- A join batch never waits long on another transaction.
--
-- try_join_livestreams (0010) skips a held livestream row, but a join can still wait on a key
-- another transaction is inserting (its request_id, or the same user joining from another
-- process), and while it waits the batch holds the rows of the livestreams it already joined and
-- the API process's one join lane. Now such a wait ends after 100 ms with lock_not_available:
-- the batch fails whole (nothing kept), each join is retried alone, and one that meets the lock
-- again counts as held and waits in its livestream's own lane (favorited/store/database.py).
CREATE OR REPLACE FUNCTION try_join_livestreams(
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
