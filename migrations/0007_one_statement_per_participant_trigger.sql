-- The participant triggers as one statement each.
--
-- Measured per webhook event (pg_stat_user_functions, PL/pgSQL self time): the triggers cost more
-- than the effect itself — ~0.5 ms in publish_participant_changes and ~0.35 ms in
-- count_new_viewers for a one-row change. Each trigger built arrays to call them (array_agg, then
-- unnest) and each of the two updated the livestream row (running its row triggers) separately.
-- Now each trigger is one statement over its transition tables: remember new viewers, update each
-- livestream row once (sequence, viewer count, peak, unique viewers), append the events, wake the
-- watchers.
--
-- They stay statement-level on purpose. A row-level trigger is cheaper for one row, but it updates
-- the livestream row once per participant row: within one transaction every update of the same
-- row walks all the versions written before it, so a statement changing 100,000 participants of
-- one livestream took quadratic time (measured: not finished after 15 minutes).

CREATE OR REPLACE FUNCTION participants_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    woken integer;
BEGIN
    WITH changes AS (
        SELECT n.livestream_id, n.id, n.user_id, n.join_time, n.status,
               to_jsonb(n) AS payload,
               (n.connected AND n.role = 'VIEWER') AS viewer
        FROM new_rows n
    ), viewers AS (
        INSERT INTO livestream_viewers (livestream_id, user_id)
        SELECT DISTINCT livestream_id, user_id FROM changes WHERE viewer
        ON CONFLICT DO NOTHING
        RETURNING livestream_id
    ), per_stream AS (
        -- Only JOINED rows are events; a participant recorded as already LEFT (a session reported
        -- after the end) is counted by the consumer itself.
        SELECT c.livestream_id,
               count(*) FILTER (WHERE c.status = 'JOINED') AS events,
               count(*) FILTER (WHERE c.status = 'JOINED' AND c.viewer) AS viewers,
               (SELECT count(*) FROM viewers v WHERE v.livestream_id = c.livestream_id) AS unique_new
        FROM changes c GROUP BY c.livestream_id
    ), bumped AS (
        UPDATE livestreams l SET
            last_event_sequence = l.last_event_sequence + p.events,
            viewer_count = l.viewer_count + p.viewers,
            peak_viewer_count = GREATEST(l.peak_viewer_count, l.viewer_count + p.viewers),
            unique_viewer_count = l.unique_viewer_count + p.unique_new
        FROM per_stream p
        WHERE l.id = p.livestream_id AND (p.events > 0 OR p.unique_new > 0)
        RETURNING l.id, l.last_event_sequence - p.events AS base
    ), appended AS (
        INSERT INTO participant_events (livestream_id, sequence, type, participant)
        SELECT c.livestream_id,
               b.base + row_number() OVER (
                   PARTITION BY c.livestream_id ORDER BY c.join_time, c.id),
               'JOINED', c.payload
        FROM changes c JOIN bumped b ON b.id = c.livestream_id
        WHERE c.status = 'JOINED'
        RETURNING livestream_id
    )
    SELECT count(pg_notify('favorited_participant_events', s.livestream_id::text)) INTO woken
    FROM (SELECT DISTINCT livestream_id FROM appended) s;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION participants_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    woken integer;
BEGIN
    WITH changes AS (
        SELECT n.livestream_id, n.id, n.user_id, n.join_time,
               to_jsonb(n) AS payload,
               CASE WHEN n.status = 'LEFT' AND o.status = 'JOINED' THEN 'LEFT'
                    WHEN n.connected AND NOT o.connected THEN 'CONNECTED'
                    WHEN o.connected AND NOT n.connected THEN 'DISCONNECTED'
                    -- A new LiveKit session replaced the old one without a gap.
                    ELSE 'CONNECTED' END::participant_event_type AS type,
               CASE WHEN n.role <> 'VIEWER' THEN 0
                    WHEN n.connected AND NOT o.connected THEN 1
                    WHEN o.connected AND NOT n.connected THEN -1
                    ELSE 0 END AS viewer_delta,
               (n.connected AND NOT o.connected AND n.role = 'VIEWER') AS new_viewer
        FROM new_rows n
        JOIN old_rows o ON o.id = n.id
        WHERE (n.status, n.connected, n.livekit_participant_sid)
              IS DISTINCT FROM (o.status, o.connected, o.livekit_participant_sid)
          -- The end of a livestream is one event (end_livestream), not one per participant.
          AND NOT n.ended_with_livestream
    ), viewers AS (
        INSERT INTO livestream_viewers (livestream_id, user_id)
        SELECT DISTINCT livestream_id, user_id FROM changes WHERE new_viewer
        ON CONFLICT DO NOTHING
        RETURNING livestream_id
    ), per_stream AS (
        SELECT c.livestream_id, count(*) AS events, sum(c.viewer_delta) AS viewers,
               (SELECT count(*) FROM viewers v WHERE v.livestream_id = c.livestream_id) AS unique_new
        FROM changes c GROUP BY c.livestream_id
    ), bumped AS (
        UPDATE livestreams l SET
            last_event_sequence = l.last_event_sequence + p.events,
            viewer_count = l.viewer_count + p.viewers,
            peak_viewer_count = GREATEST(l.peak_viewer_count, l.viewer_count + p.viewers),
            unique_viewer_count = l.unique_viewer_count + p.unique_new
        FROM per_stream p WHERE l.id = p.livestream_id
        RETURNING l.id, l.last_event_sequence - p.events AS base
    ), appended AS (
        INSERT INTO participant_events (livestream_id, sequence, type, participant)
        SELECT c.livestream_id,
               b.base + row_number() OVER (
                   PARTITION BY c.livestream_id ORDER BY c.join_time, c.id),
               c.type, c.payload
        FROM changes c JOIN bumped b ON b.id = c.livestream_id
        RETURNING livestream_id
    )
    SELECT count(pg_notify('favorited_participant_events', s.livestream_id::text)) INTO woken
    FROM (SELECT DISTINCT livestream_id FROM appended) s;
    RETURN NULL;
END;
$$;

-- One statement ends a livestream: the livestream first (its row lock orders the end after every
-- change already committed to it), then all of its JOINED participants in one UPDATE, marked
-- ended_with_livestream so the trigger above skips them, then the one LIVESTREAM_ENDED event
-- (0006). The viewer count drops to zero here.
CREATE OR REPLACE FUNCTION end_livestream(p_id uuid) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_sequence bigint;
BEGIN
    UPDATE livestreams
    SET status = 'ENDED', end_time = clock_timestamp(), viewer_count = 0,
        last_event_sequence = last_event_sequence + 1
    WHERE id = p_id AND status = 'LIVE'
    RETURNING last_event_sequence INTO v_sequence;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- update_time is set here, so the per-row guard trigger is skipped (0006).
    UPDATE participants
    SET status = 'LEFT', leave_time = clock_timestamp(), update_time = clock_timestamp(),
        connected = false, ended_with_livestream = true
    WHERE livestream_id = p_id AND status = 'JOINED';
    INSERT INTO participant_events (livestream_id, sequence, type, participant)
    VALUES (p_id, v_sequence, 'LIVESTREAM_ENDED', NULL);
    PERFORM pg_notify('favorited_participant_events', p_id::text);
    RETURN true;
END;
$$;

DROP FUNCTION publish_participant_changes(
    uuid[], uuid[], participant_event_type[], jsonb[], integer[], timestamptz[]
);

-- CREATE OR REPLACE dropped the settings of 0003: set them again. Also without JIT: a trigger's
-- generic plan cannot know how many rows a statement changed, and for a big statement the
-- planner's guess made PostgreSQL spend more time compiling than running it.
ALTER FUNCTION participants_after_insert() SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION participants_after_insert() SET jit = off;
ALTER FUNCTION participants_after_update() SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION participants_after_update() SET jit = off;
