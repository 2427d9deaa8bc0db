-- Apply a batch of LiveKit webhook events in one round trip.
--
-- The consumer used to run 6-7 statements per event from Python; the round trips, not the work,
-- dominated its cost (asyncpg was half of the consumer's CPU and each statement is a client/server
-- exchange). The same rules now run here, one call per batch, in the caller's transaction:
--
-- * exactly once: each event's id is claimed in webhook_inbox first; a redelivered (or in-batch
--   duplicate) id is reported 'duplicate' and changes nothing. A concurrent duplicate in another
--   transaction blocks on the primary key until the first one commits or rolls back.
-- * every effect locks its livestream row first (FOR NO KEY UPDATE), like the RPCs, so effects of
--   one livestream serialise with each other and with joins, leaves and the end.
-- * sessions are keyed by LiveKit participant sid: an ended session is remembered (a late
--   participant_joined cannot resurrect it) and a participant is bound to its newest session (an old
--   sid's late participant_left cannot end a newer one, an old sid's late joined cannot rebind).
-- * events about a room or session we do not track are 'ignored'; types we do not act on are
--   'unhandled'. Outcomes are returned in input order and recorded on the inbox rows.
--
-- The live figures and the participant event log follow from the participant triggers, as for
-- every other writer.

-- Ending a livestream is one statement: the livestream and all of its JOINED participants. Shared
-- by DeleteLivestream and room_finished. Returns whether this call ended it.
CREATE FUNCTION end_livestream(p_id uuid) RETURNS boolean LANGUAGE sql AS $$
    WITH ended AS (
        UPDATE livestreams SET status = 'ENDED', end_time = clock_timestamp()
        WHERE id = p_id AND status = 'LIVE'
        RETURNING id
    ), left_participants AS (
        UPDATE participants SET status = 'LEFT', leave_time = clock_timestamp(), connected = false
        WHERE livestream_id IN (SELECT id FROM ended) AND status = 'JOINED'
    )
    SELECT count(*) > 0 FROM ended;
$$;

-- A session that joined: bind it to the user's JOINED participant (or record one), unless it is
-- older than the session already bound. If its left was applied first, apply joined-then-left.
CREATE FUNCTION webhook_participant_joined(
    p_room_sid text, p_participant_sid text, p_identity text, p_name text, p_metadata jsonb,
    p_joined_at_ms bigint, p_can_publish boolean
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_livestream_id uuid;
    v_status livestream_status;
    v_created_by text;
    v_role participant_role;
    v_display_name text;
    v_ended boolean;
    v_current_id uuid;
    v_current_sid text;
    v_bound_at bigint;
BEGIN
    SELECT id, status, created_by INTO v_livestream_id, v_status, v_created_by
    FROM livestreams WHERE livekit_room_sid = p_room_sid FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN 'ignored';
    END IF;
    v_role := CASE WHEN p_identity = v_created_by AND p_can_publish THEN 'HOST' ELSE 'VIEWER' END;
    v_display_name := left(coalesce(nullif(p_name, ''), p_identity), 128);

    IF v_status <> 'LIVE' THEN
        -- The room finished before this (reordered) event was applied. Record what in-order
        -- delivery would have left behind: the viewer counted, and a LEFT participant.
        IF v_role = 'VIEWER' THEN
            PERFORM count_new_viewers(ARRAY[v_livestream_id], ARRAY[p_identity]);
        END IF;
        IF NOT EXISTS (SELECT 1 FROM participants
                       WHERE livestream_id = v_livestream_id AND user_id = p_identity) THEN
            INSERT INTO participants (id, livestream_id, user_id, display_name, role, metadata,
                                      livekit_participant_sid, livekit_room_sid, connected,
                                      status, leave_time)
            VALUES (gen_random_uuid(), v_livestream_id, p_identity, v_display_name, v_role,
                    p_metadata, p_participant_sid, p_room_sid, false, 'LEFT', clock_timestamp());
        END IF;
        RETURN 'ignored';
    END IF;

    INSERT INTO livekit_sessions (sid, livestream_id, identity, joined_at_ms)
    VALUES (p_participant_sid, v_livestream_id, p_identity, p_joined_at_ms)
    ON CONFLICT (sid) DO UPDATE
        SET joined_at_ms = coalesce(livekit_sessions.joined_at_ms, EXCLUDED.joined_at_ms),
            update_time = clock_timestamp()
    RETURNING ended INTO v_ended;

    SELECT id, livekit_participant_sid INTO v_current_id, v_current_sid
    FROM participants
    WHERE livestream_id = v_livestream_id AND user_id = p_identity AND status = 'JOINED';
    IF NOT FOUND THEN
        -- A valid token holder connected without a JOINED row (never called Join, or left and
        -- came back with the same token): LiveKit admitted them, so record them.
        INSERT INTO participants (id, livestream_id, user_id, display_name, role, metadata,
                                  livekit_participant_sid, livekit_room_sid, connected)
        VALUES (gen_random_uuid(), v_livestream_id, p_identity, v_display_name, v_role,
                p_metadata, p_participant_sid, p_room_sid, true);
    ELSE
        IF v_current_sid IS NOT NULL AND v_current_sid <> p_participant_sid THEN
            SELECT joined_at_ms INTO v_bound_at FROM livekit_sessions WHERE sid = v_current_sid;
            IF v_bound_at IS NOT NULL AND v_bound_at > p_joined_at_ms THEN
                RETURN 'ignored';  -- an older session, reported late
            END IF;
        END IF;
        UPDATE participants
        SET livekit_participant_sid = p_participant_sid, livekit_room_sid = p_room_sid,
            connected = true
        WHERE id = v_current_id AND status = 'JOINED';
    END IF;

    IF v_ended THEN
        UPDATE participants SET status = 'LEFT', leave_time = clock_timestamp(), connected = false
        WHERE livekit_participant_sid = p_participant_sid AND status = 'JOINED';
    END IF;
    RETURN 'applied';
END;
$$;

-- A session that ended (left or connection aborted): remember it, and end its participant if the
-- participant is still bound to it.
CREATE FUNCTION webhook_participant_left(
    p_room_sid text, p_participant_sid text, p_identity text
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_livestream_id uuid;
BEGIN
    SELECT id INTO v_livestream_id
    FROM livestreams WHERE livekit_room_sid = p_room_sid FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN 'ignored';
    END IF;
    INSERT INTO livekit_sessions (sid, livestream_id, identity, ended)
    VALUES (p_participant_sid, v_livestream_id, p_identity, true)
    ON CONFLICT (sid) DO UPDATE SET ended = true, update_time = clock_timestamp();
    UPDATE participants SET status = 'LEFT', leave_time = clock_timestamp(), connected = false
    WHERE livekit_participant_sid = p_participant_sid AND status = 'JOINED';
    RETURN CASE WHEN FOUND THEN 'applied' ELSE 'ignored' END;
END;
$$;

-- Events arrive as parallel arrays (one element per event, in delivery order); the outcomes come
-- back in the same order.
CREATE FUNCTION apply_webhook_events(
    p_event_ids text[], p_events text[], p_room_sids text[], p_room_names text[],
    p_participant_sids text[], p_identities text[], p_names text[], p_metadata jsonb[],
    p_joined_at_ms bigint[], p_can_publish boolean[], p_inbox_ttl_s double precision
) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    v_outcomes text[] := '{}';
    v_outcome text;
    v_livestream_id uuid;
BEGIN
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
            SELECT id INTO v_livestream_id FROM livestreams WHERE livekit_room_sid = p_room_sids[i];
            v_outcome := CASE WHEN FOUND AND end_livestream(v_livestream_id)
                              THEN 'applied' ELSE 'ignored' END;
        ELSE
            v_outcome := 'unhandled';  -- tracks, egress, ...: nothing of ours changes
        END CASE;

        UPDATE webhook_inbox SET outcome = v_outcome WHERE event_id = p_event_ids[i];
        v_outcomes := v_outcomes || v_outcome;
    END LOOP;
    RETURN v_outcomes;
END;
$$;
