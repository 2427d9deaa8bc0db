-- favorited schema: livestreams, participants, idempotency keys.
-- The invariants live in the database itself, so that no code path (or concurrent race) can break them.

CREATE TYPE livestream_status AS ENUM ('SCHEDULED', 'LIVE', 'ENDED', 'ERROR');
CREATE TYPE participant_role AS ENUM ('HOST', 'VIEWER');
CREATE TYPE participant_status AS ENUM ('JOINED', 'LEFT');

CREATE TABLE livestreams (
    id                  uuid PRIMARY KEY,
    room_name           text NOT NULL CHECK (room_name ~ '^[a-z0-9_-]{1,128}$'),
    title               text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description         text NOT NULL DEFAULT '' CHECK (char_length(description) <= 5000),
    status              livestream_status NOT NULL DEFAULT 'SCHEDULED',
    created_by          text NOT NULL CHECK (created_by <> ''),
    max_participants    integer NOT NULL CHECK (max_participants BETWEEN 1 AND 10000),
    -- Seats the LiveKit room was created with (viewers + the host); LiveKit cannot change it later.
    room_capacity       integer NOT NULL CHECK (room_capacity > max_participants),
    empty_timeout_s     integer NOT NULL CHECK (empty_timeout_s BETWEEN 1 AND 604800),
    metadata            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    livekit_room_sid    text,
    viewer_count        integer NOT NULL DEFAULT 0 CHECK (viewer_count >= 0),
    peak_viewer_count   integer NOT NULL DEFAULT 0 CHECK (peak_viewer_count >= viewer_count),
    unique_viewer_count integer NOT NULL DEFAULT 0 CHECK (unique_viewer_count >= 0),
    -- clock_timestamp, not now(): rows written in one transaction still get distinct, ordered times.
    create_time         timestamptz NOT NULL DEFAULT clock_timestamp(),
    update_time         timestamptz NOT NULL DEFAULT clock_timestamp(),
    start_time          timestamptz,
    end_time            timestamptz,
    CHECK ((status = 'ENDED') = (end_time IS NOT NULL)),
    CHECK (status <> 'LIVE' OR start_time IS NOT NULL)
);

-- A room name is unique among SCHEDULED/LIVE livestreams; an ENDED stream's name may be reused.
CREATE UNIQUE INDEX livestreams_active_room_name_key
    ON livestreams (room_name) WHERE status IN ('SCHEDULED', 'LIVE');
-- LiveKit gives every room incarnation a new sid; events are matched by sid, never by name alone.
CREATE UNIQUE INDEX livestreams_livekit_room_sid_key
    ON livestreams (livekit_room_sid) WHERE livekit_room_sid IS NOT NULL;
-- Keyset paging, newest first, for each List filter combination.
CREATE INDEX livestreams_create_time_idx ON livestreams (create_time DESC, id DESC);
CREATE INDEX livestreams_status_create_time_idx ON livestreams (status, create_time DESC, id DESC);
CREATE INDEX livestreams_created_by_create_time_idx
    ON livestreams (created_by, create_time DESC, id DESC);
CREATE INDEX livestreams_room_name_idx ON livestreams (room_name);

-- Guarded lifecycle: SCHEDULED → LIVE | ERROR, LIVE → ENDED; ENDED and ERROR are terminal and
-- end_time is written once. A blind overwrite fails here even if application code forgets its WHERE.
CREATE FUNCTION livestreams_guard() RETURNS trigger LANGUAGE plpgsql AS $$
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
    NEW.update_time := clock_timestamp();
    RETURN NEW;
END;
$$;
CREATE TRIGGER livestreams_guard BEFORE UPDATE ON livestreams
    FOR EACH ROW EXECUTE FUNCTION livestreams_guard();

CREATE TABLE participants (
    id                      uuid PRIMARY KEY,
    livestream_id           uuid NOT NULL REFERENCES livestreams (id),
    user_id                 text NOT NULL CHECK (user_id <> ''),
    display_name            text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 128),
    role                    participant_role NOT NULL,
    status                  participant_status NOT NULL DEFAULT 'JOINED',
    metadata                jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    join_time               timestamptz NOT NULL DEFAULT clock_timestamp(),
    leave_time              timestamptz,
    update_time             timestamptz NOT NULL DEFAULT clock_timestamp(),
    livekit_participant_sid text,
    livekit_room_sid        text,
    connected               boolean NOT NULL DEFAULT false,
    CHECK ((status = 'LEFT') = (leave_time IS NOT NULL)),
    CHECK (NOT (connected AND status = 'LEFT'))
);

-- At most one JOINED participant per (livestream, user): concurrent joins cannot duplicate.
CREATE UNIQUE INDEX participants_one_joined_key
    ON participants (livestream_id, user_id) WHERE status = 'JOINED';
-- A LiveKit session (participant sid) belongs to exactly one participant.
CREATE UNIQUE INDEX participants_livekit_participant_sid_key
    ON participants (livekit_participant_sid) WHERE livekit_participant_sid IS NOT NULL;
-- Keyset paging in join order, and capacity counts of JOINED viewers.
CREATE INDEX participants_livestream_join_time_idx ON participants (livestream_id, join_time, id);
CREATE INDEX participants_joined_role_idx
    ON participants (livestream_id, role) WHERE status = 'JOINED';
CREATE INDEX participants_livestream_user_idx ON participants (livestream_id, user_id, join_time DESC);

CREATE FUNCTION participants_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'LEFT' AND NEW.status <> 'LEFT' THEN
        RAISE EXCEPTION 'a participant that left cannot rejoin; join again as a new participant'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'participants_status_transition';
    END IF;
    IF OLD.leave_time IS NOT NULL AND NEW.leave_time IS DISTINCT FROM OLD.leave_time THEN
        RAISE EXCEPTION 'participant leave_time is already set'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'participants_leave_time_once';
    END IF;
    NEW.update_time := clock_timestamp();
    RETURN NEW;
END;
$$;
CREATE TRIGGER participants_guard BEFORE UPDATE ON participants
    FOR EACH ROW EXECUTE FUNCTION participants_guard();

-- request_id idempotency (AIP-155): (caller, method, request_id) → the resource the first call made.
CREATE TABLE idempotency_keys (
    caller      text NOT NULL,
    method      text NOT NULL,
    request_id  text NOT NULL,
    resource_id uuid NOT NULL,
    create_time timestamptz NOT NULL DEFAULT clock_timestamp(),
    expire_time timestamptz NOT NULL,
    PRIMARY KEY (caller, method, request_id)
);
CREATE INDEX idempotency_keys_expire_time_idx ON idempotency_keys (expire_time);
