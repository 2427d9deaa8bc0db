-- Make the participant triggers cheap enough for the webhook hot path:
-- * publish_participant_changes becomes PL/pgSQL, whose statement plans are cached per session
--   (a LANGUAGE sql function that cannot be inlined is planned again on every call);
-- * unique_viewer_count grows by the viewers newly added to livestream_viewers instead of being
--   recounted (a recount costs O(viewers) per change: 100,000 rows at a big livestream's end).

DROP FUNCTION publish_participant_changes(
    uuid[], uuid[], participant_event_type[], jsonb[], integer[], timestamptz[]
);
CREATE FUNCTION publish_participant_changes(
    livestream_ids uuid[], participant_ids uuid[], types participant_event_type[],
    payloads jsonb[], viewer_deltas integer[], join_times timestamptz[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    woken integer;
BEGIN
    WITH changes AS (
        SELECT * FROM unnest(livestream_ids, participant_ids, types, payloads, viewer_deltas,
                             join_times)
            AS c(livestream_id, participant_id, type, payload, viewer_delta, join_time)
    ), per_stream AS (
        SELECT livestream_id, count(*) AS events, sum(viewer_delta) AS viewers
        FROM changes GROUP BY livestream_id
    ), bumped AS (
        UPDATE livestreams l SET
            last_event_sequence = l.last_event_sequence + p.events,
            viewer_count = l.viewer_count + p.viewers,
            peak_viewer_count = GREATEST(l.peak_viewer_count, l.viewer_count + p.viewers)
        FROM per_stream p WHERE l.id = p.livestream_id
        RETURNING l.id, l.last_event_sequence - p.events AS base
    ), appended AS (
        INSERT INTO participant_events (livestream_id, sequence, type, participant)
        SELECT c.livestream_id,
               b.base + row_number() OVER (
                   PARTITION BY c.livestream_id ORDER BY c.join_time, c.participant_id),
               c.type, c.payload
        FROM changes c JOIN bumped b ON b.id = c.livestream_id
        RETURNING livestream_id
    )
    SELECT count(pg_notify('favorited_participant_events', s.livestream_id::text)) INTO woken
    FROM (SELECT DISTINCT livestream_id FROM appended) s;
END;
$$;

-- Connected viewers seen for the first time: remember them and count them, in one statement.
CREATE FUNCTION count_new_viewers(livestream_ids uuid[], user_ids text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    WITH added AS (
        INSERT INTO livestream_viewers (livestream_id, user_id)
        SELECT DISTINCT * FROM unnest(livestream_ids, user_ids)
        ON CONFLICT DO NOTHING
        RETURNING livestream_id
    )
    UPDATE livestreams l SET unique_viewer_count = l.unique_viewer_count + a.n
    FROM (SELECT livestream_id, count(*) AS n FROM added GROUP BY livestream_id) a
    WHERE l.id = a.livestream_id;
END;
$$;

CREATE OR REPLACE FUNCTION participants_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM count_new_viewers(array_agg(livestream_id), array_agg(user_id))
    FROM new_rows WHERE connected AND role = 'VIEWER' HAVING count(*) > 0;
    PERFORM publish_participant_changes(
        array_agg(n.livestream_id), array_agg(n.id), array_agg('JOINED'::participant_event_type),
        array_agg(to_jsonb(n)),
        array_agg(CASE WHEN n.connected AND n.role = 'VIEWER' THEN 1 ELSE 0 END),
        array_agg(n.join_time))
    FROM new_rows n WHERE n.status = 'JOINED' HAVING count(*) > 0;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION participants_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM count_new_viewers(array_agg(n.livestream_id), array_agg(n.user_id))
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n.connected AND NOT o.connected AND n.role = 'VIEWER' HAVING count(*) > 0;
    PERFORM publish_participant_changes(
        array_agg(n.livestream_id), array_agg(n.id),
        array_agg(CASE WHEN n.status = 'LEFT' AND o.status = 'JOINED' THEN 'LEFT'
                       WHEN n.connected AND NOT o.connected THEN 'CONNECTED'
                       WHEN o.connected AND NOT n.connected THEN 'DISCONNECTED'
                       -- A new LiveKit session replaced the old one without a gap.
                       ELSE 'CONNECTED' END::participant_event_type),
        array_agg(to_jsonb(n)),
        array_agg(CASE WHEN n.role <> 'VIEWER' THEN 0
                       WHEN n.connected AND NOT o.connected THEN 1
                       WHEN o.connected AND NOT n.connected THEN -1
                       ELSE 0 END),
        array_agg(n.join_time))
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE (n.status, n.connected, n.livekit_participant_sid)
          IS DISTINCT FROM (o.status, o.connected, o.livekit_participant_sid)
    HAVING count(*) > 0;
    RETURN NULL;
END;
$$;

-- These functions run once per statement on the hottest path. Their parameters are arrays, for
-- which the planner keeps choosing fresh custom plans (re-planning a CTE on every call); a generic
-- plan is as good here and is planned once per session.
ALTER FUNCTION publish_participant_changes(
    uuid[], uuid[], participant_event_type[], jsonb[], integer[], timestamptz[]
) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION count_new_viewers(uuid[], text[]) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION participants_after_insert() SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION participants_after_update() SET plan_cache_mode = force_generic_plan;
