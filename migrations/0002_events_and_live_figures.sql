-- Participant event log (the durable source of WatchParticipants), live figures, and the webhook
-- pipeline's tables. Both the log and the figures are maintained by statement-level triggers on
-- participants, so every code path (RPCs, webhooks, reconciliation, room end) feeds them inside its
-- own transaction, set-based: ending a livestream of 100,000 participants is still one UPDATE.

ALTER TABLE livestreams ADD COLUMN last_event_sequence bigint NOT NULL DEFAULT 0;

-- Only real changes move update_time; live figures and the event counter do not.
CREATE OR REPLACE FUNCTION livestreams_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
        (OLD.status = 'SCHEDULED' AND NEW.status IN ('LIVE', 'ERROR'))
        OR (OLD.status = 'LIVE' AND NEW.status = 'ENDED')
    ) THEN
        RAISE EXCEPTION 'illegal livestream transition % -> %', OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'livestreams_status_transition';
    END IF;
    IF OLD.end_time IS NOT NULL AND NEW.end_time IS DISTINCT FROM OLD.end_time THEN
        RAISE EXCEPTION 'livestream end_time is already set'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'livestreams_end_time_once';
    END IF;
    IF (NEW.title, NEW.description, NEW.metadata, NEW.max_participants, NEW.empty_timeout_s,
        NEW.status, NEW.livekit_room_sid, NEW.start_time, NEW.end_time)
       IS DISTINCT FROM
       (OLD.title, OLD.description, OLD.metadata, OLD.max_participants, OLD.empty_timeout_s,
        OLD.status, OLD.livekit_room_sid, OLD.start_time, OLD.end_time) THEN
        NEW.update_time := clock_timestamp();
    END IF;
    RETURN NEW;
END;
$$;

CREATE TYPE participant_event_type AS ENUM ('JOINED', 'LEFT', 'CONNECTED', 'DISCONNECTED');

CREATE TABLE participant_events (
    livestream_id uuid NOT NULL REFERENCES livestreams (id),
    sequence      bigint NOT NULL CHECK (sequence > 0),
    type          participant_event_type NOT NULL,
    participant   jsonb NOT NULL,
    details       jsonb NOT NULL DEFAULT '{}',
    create_time   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (livestream_id, sequence)
);
CREATE INDEX participant_events_create_time_idx ON participant_events (create_time);

-- Distinct users that have ever connected as viewers, for unique_viewer_count.
CREATE TABLE livestream_viewers (
    livestream_id uuid NOT NULL REFERENCES livestreams (id),
    user_id       text NOT NULL,
    PRIMARY KEY (livestream_id, user_id)
);

-- The shared half of the participant triggers: given the changes of one statement, take
-- per-livestream sequence numbers by incrementing each livestream row once (its row lock orders
-- sequences by commit), apply the viewer deltas, append the events and wake the watchers.
-- Changes arrive as parallel arrays so both triggers stay single set-based statements.
CREATE FUNCTION publish_participant_changes(
    livestream_ids uuid[], participant_ids uuid[], types participant_event_type[],
    payloads jsonb[], viewer_deltas integer[], join_times timestamptz[]
) RETURNS void LANGUAGE sql AS $$
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
            peak_viewer_count = GREATEST(l.peak_viewer_count, l.viewer_count + p.viewers),
            unique_viewer_count = (
                SELECT count(*) FROM livestream_viewers v WHERE v.livestream_id = l.id
            )
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
    SELECT pg_notify('favorited_participant_events', livestream_id::text)
    FROM (SELECT DISTINCT livestream_id FROM appended) s;
$$;

CREATE FUNCTION participants_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO livestream_viewers (livestream_id, user_id)
    SELECT DISTINCT livestream_id, user_id FROM new_rows WHERE connected AND role = 'VIEWER'
    ON CONFLICT DO NOTHING;
    PERFORM publish_participant_changes(
        array_agg(n.livestream_id), array_agg(n.id), array_agg('JOINED'::participant_event_type),
        array_agg(to_jsonb(n)),
        array_agg(CASE WHEN n.connected AND n.role = 'VIEWER' THEN 1 ELSE 0 END),
        array_agg(n.join_time))
    FROM new_rows n WHERE n.status = 'JOINED';
    RETURN NULL;
END;
$$;

CREATE FUNCTION participants_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO livestream_viewers (livestream_id, user_id)
    SELECT DISTINCT livestream_id, user_id FROM new_rows WHERE connected AND role = 'VIEWER'
    ON CONFLICT DO NOTHING;
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
          IS DISTINCT FROM (o.status, o.connected, o.livekit_participant_sid);
    RETURN NULL;
END;
$$;

CREATE TRIGGER participants_after_insert AFTER INSERT ON participants
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION participants_after_insert();
CREATE TRIGGER participants_after_update AFTER UPDATE ON participants
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION participants_after_update();

-- Livestream changes (status, figures) wake WatchLivestream streams; the row itself is the state.
CREATE FUNCTION livestreams_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('favorited_livestream_changes', NEW.id::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER livestreams_notify AFTER UPDATE ON livestreams
    FOR EACH ROW WHEN (
        (OLD.status, OLD.viewer_count, OLD.peak_viewer_count, OLD.unique_viewer_count,
         OLD.title, OLD.description, OLD.metadata, OLD.max_participants)
        IS DISTINCT FROM
        (NEW.status, NEW.viewer_count, NEW.peak_viewer_count, NEW.unique_viewer_count,
         NEW.title, NEW.description, NEW.metadata, NEW.max_participants)
    )
    EXECUTE FUNCTION livestreams_notify();

-- LiveKit sessions (participant sids) seen by the consumer. A session that ended is remembered, so
-- a late or reordered participant_joined for it can never resurrect a participant.
CREATE TABLE livekit_sessions (
    sid           text PRIMARY KEY,
    livestream_id uuid NOT NULL REFERENCES livestreams (id),
    identity      text NOT NULL,
    joined_at_ms  bigint,
    ended         boolean NOT NULL DEFAULT false,
    update_time   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX livekit_sessions_livestream_identity_idx ON livekit_sessions (livestream_id, identity);

-- Exactly-once: a webhook's effects and its inbox row commit together.
CREATE TABLE webhook_inbox (
    event_id    text PRIMARY KEY,
    event       text NOT NULL,
    outcome     text NOT NULL,
    apply_time  timestamptz NOT NULL DEFAULT clock_timestamp(),
    expire_time timestamptz NOT NULL
);
CREATE INDEX webhook_inbox_expire_time_idx ON webhook_inbox (expire_time);

-- Messages the consumer gave up on, kept for inspection and replay.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    event_id    text NOT NULL,
    event       text NOT NULL DEFAULT '',
    reason      text NOT NULL,
    attempts    integer NOT NULL,
    body        bytea NOT NULL,
    create_time timestamptz NOT NULL DEFAULT clock_timestamp(),
    replay_time timestamptz
);
CREATE INDEX dead_letters_pending_idx ON dead_letters (create_time) WHERE replay_time IS NULL;
