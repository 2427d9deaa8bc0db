-- Participant changes are published once per webhook batch, not once per statement.
--
-- Measured (backend CPU, one-row UPDATEs of participants in transactions of 100): the statement
-- trigger's bookkeeping cost ~500 µs per one-row change against ~190 µs for the change itself.
-- Most of it is fixed cost per statement — executor start-up for the updates of livestreams and
-- participant_events, the livestream row's 13 CHECK constraints parsed again for every update, its
-- guard trigger — and the webhook consumer runs one such statement per event. Inside
-- apply_webhook_events a trigger now only appends what changed to a session-private list
-- (~40 µs), and one statement publishes the list for the whole batch: PostgreSQL CPU per webhook
-- event 425-630 µs before, 340-410 µs after (16,000 events, batches of 100, alternated twice).
-- Every other writer publishes per statement, as before.
--
-- Publishing a batch is exactly publishing its changes one by one: events get their sequences in
-- the order the changes were made, and the peak is the highest viewer count after any change
-- (the running sum over the batch), not only the count after the last one.

-- The changes a batch made and has not yet published, in order. A temporary table: private to the
-- session, never WAL-logged, emptied at commit; apply_webhook_events creates it on first use.
CREATE FUNCTION create_participant_changes() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS participant_changes (
        ordinal       bigserial,
        livestream_id uuid NOT NULL,
        user_id       text NOT NULL,
        type          participant_event_type NOT NULL,
        payload       jsonb NOT NULL,
        viewer_delta  integer NOT NULL,
        new_viewer    boolean NOT NULL
    ) ON COMMIT DELETE ROWS;
END;
$$;

-- Publish every pending change, as the triggers publish a statement's: remember new viewers,
-- update each livestream row once (sequence, viewer count, peak, unique viewers), append the
-- events, wake the watchers.
CREATE FUNCTION publish_participant_changes() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    woken integer;
BEGIN
    WITH changes AS (
        DELETE FROM pg_temp.participant_changes RETURNING *
    ), ranked AS (
        SELECT c.livestream_id, c.type, c.payload, c.viewer_delta,
               row_number() OVER w AS position,
               sum(c.viewer_delta) OVER w AS viewers_after
        FROM changes c
        WINDOW w AS (PARTITION BY c.livestream_id ORDER BY c.ordinal)
    ), viewers AS (
        INSERT INTO livestream_viewers (livestream_id, user_id)
        SELECT DISTINCT livestream_id, user_id FROM changes WHERE new_viewer
        ON CONFLICT DO NOTHING
        RETURNING livestream_id
    ), per_stream AS (
        SELECT r.livestream_id, count(*) AS events, sum(r.viewer_delta) AS viewers,
               max(r.viewers_after) AS highest,
               (SELECT count(*) FROM viewers v WHERE v.livestream_id = r.livestream_id) AS unique_new
        FROM ranked r GROUP BY r.livestream_id
    ), bumped AS (
        UPDATE livestreams l SET
            last_event_sequence = l.last_event_sequence + p.events,
            viewer_count = l.viewer_count + p.viewers,
            peak_viewer_count = GREATEST(l.peak_viewer_count, l.viewer_count + p.highest),
            unique_viewer_count = l.unique_viewer_count + p.unique_new
        FROM per_stream p WHERE l.id = p.livestream_id
        RETURNING l.id, l.last_event_sequence - p.events AS base
    ), appended AS (
        INSERT INTO participant_events (livestream_id, sequence, type, participant)
        SELECT r.livestream_id, b.base + r.position, r.type, r.payload
        FROM ranked r JOIN bumped b ON b.id = r.livestream_id
        RETURNING livestream_id
    )
    SELECT count(pg_notify('favorited_participant_events', s.livestream_id::text)) INTO woken
    FROM (SELECT DISTINCT livestream_id FROM appended) s;
END;
$$;

-- The triggers: in a batch, record the changes for publish_participant_changes; otherwise publish
-- them at once as 0007 did (one statement over the transition tables: for a single statement that
-- is cheaper than going through the list, measured ~7 % on JoinLivestream). The two forms of each
-- rule are kept in step here; tests/store/test_publish_batches.py compares them.
CREATE OR REPLACE FUNCTION participants_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    woken integer;
BEGIN
    IF current_setting('favorited.publish', true) = 'batch' THEN
        -- Only JOINED rows are events; a participant recorded as already LEFT (a session
        -- reported after the end) is counted by the consumer itself.
        INSERT INTO pg_temp.participant_changes
            (livestream_id, user_id, type, payload, viewer_delta, new_viewer)
        SELECT n.livestream_id, n.user_id, 'JOINED', to_jsonb(n),
               (n.connected AND n.role = 'VIEWER')::integer, n.connected AND n.role = 'VIEWER'
        FROM new_rows n
        WHERE n.status = 'JOINED'
        ORDER BY n.join_time, n.id;
        RETURN NULL;
    END IF;
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
    IF current_setting('favorited.publish', true) = 'batch' THEN
        INSERT INTO pg_temp.participant_changes
            (livestream_id, user_id, type, payload, viewer_delta, new_viewer)
        SELECT n.livestream_id, n.user_id,
               CASE WHEN n.status = 'LEFT' AND o.status = 'JOINED' THEN 'LEFT'
                    WHEN n.connected AND NOT o.connected THEN 'CONNECTED'
                    WHEN o.connected AND NOT n.connected THEN 'DISCONNECTED'
                    ELSE 'CONNECTED' END::participant_event_type,
               to_jsonb(n),
               CASE WHEN n.role <> 'VIEWER' THEN 0
                    WHEN n.connected AND NOT o.connected THEN 1
                    WHEN o.connected AND NOT n.connected THEN -1
                    ELSE 0 END,
               n.connected AND NOT o.connected AND n.role = 'VIEWER'
        FROM new_rows n
        JOIN old_rows o ON o.id = n.id
        WHERE (n.status, n.connected, n.livekit_participant_sid)
              IS DISTINCT FROM (o.status, o.connected, o.livekit_participant_sid)
          AND NOT n.ended_with_livestream
        ORDER BY n.join_time, n.id;
        RETURN NULL;
    END IF;
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

-- As in 0004, with the batch's participant changes published once: before a room's end (whose
-- LIVESTREAM_ENDED event must come after them) and at the end of the batch. The setting is
-- transaction-local and switched back before returning, so statements the caller runs after this
-- in the same transaction publish as usual.
CREATE OR REPLACE FUNCTION apply_webhook_events(
    p_event_ids text[], p_events text[], p_room_sids text[], p_room_names text[],
    p_participant_sids text[], p_identities text[], p_names text[], p_metadata jsonb[],
    p_joined_at_ms bigint[], p_can_publish boolean[], p_inbox_ttl_s double precision
) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    v_outcomes text[] := '{}';
    v_outcome text;
    v_livestream_id uuid;
BEGIN
    IF to_regclass('pg_temp.participant_changes') IS NULL THEN
        PERFORM create_participant_changes();
    END IF;
    PERFORM set_config('favorited.publish', 'batch', true);
    FOR i IN 1 .. coalesce(cardinality(p_event_ids), 0) LOOP
        INSERT INTO webhook_inbox (event_id, event, outcome, expire_time)
        VALUES (p_event_ids[i], p_events[i], 'pending',
                clock_timestamp() + make_interval(secs => p_inbox_ttl_s))
        ON CONFLICT (event_id) DO NOTHING;
        IF NOT FOUND THEN
            v_outcomes := v_outcomes || 'duplicate'::text;
            CONTINUE;
        END IF;

        CASE p_events[i]
        WHEN 'participant_joined' THEN
            v_outcome := webhook_participant_joined(
                p_room_sids[i], p_participant_sids[i], p_identities[i], p_names[i],
                p_metadata[i], p_joined_at_ms[i], p_can_publish[i]);
        WHEN 'participant_left', 'participant_connection_aborted' THEN
            v_outcome := webhook_participant_left(
                p_room_sids[i], p_participant_sids[i], p_identities[i]);
        WHEN 'room_started' THEN
            UPDATE livestreams SET livekit_room_sid = p_room_sids[i]
            WHERE room_name = p_room_names[i] AND status IN ('SCHEDULED', 'LIVE')
              AND livekit_room_sid IS NULL;
            v_outcome := CASE WHEN FOUND THEN 'applied' ELSE 'ignored' END;
        WHEN 'room_finished' THEN
            PERFORM publish_participant_changes();
            SELECT id INTO v_livestream_id FROM livestreams WHERE livekit_room_sid = p_room_sids[i];
            v_outcome := CASE WHEN FOUND AND end_livestream(v_livestream_id)
                              THEN 'applied' ELSE 'ignored' END;
        ELSE
            v_outcome := 'unhandled';  -- tracks, egress, ...: nothing of ours changes
        END CASE;

        UPDATE webhook_inbox SET outcome = v_outcome WHERE event_id = p_event_ids[i];
        v_outcomes := v_outcomes || v_outcome;
    END LOOP;
    PERFORM publish_participant_changes();
    PERFORM set_config('favorited.publish', 'statement', true);
    RETURN v_outcomes;
END;
$$;

-- CREATE OR REPLACE dropped the triggers' settings: set them again (0007 says why). The batch's
-- publishing statement runs without JIT too (its plan cannot know how big the batch is).
ALTER FUNCTION participants_after_insert() SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION participants_after_insert() SET jit = off;
ALTER FUNCTION participants_after_update() SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION participants_after_update() SET jit = off;
ALTER FUNCTION apply_webhook_events(
    text[], text[], text[], text[], text[], text[], text[], jsonb[], bigint[], boolean[],
    double precision
) SET jit = off;
