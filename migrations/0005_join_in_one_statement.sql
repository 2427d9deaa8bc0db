-- JoinLivestream in one statement: lock, checks, request_id claim and insert in one round trip
-- (it took five: BEGIN, lock, checks, insert, COMMIT). The function only decides and writes; the
-- API turns each outcome into its error, in the SPEC's order:
--   NOT_FOUND, NOT_LIVE, HOST_RESERVED, then REPLAYED (a live request_id binding: the bound
--   participant, whatever it is, for the API to check), ALREADY_JOINED, FULL, else JOINED.
-- A refusal writes nothing: the request_id is claimed only once every check has passed, in the
-- same statement as the insert, so a refused join never binds its request_id.

CREATE TYPE join_result AS (
    outcome                 text,
    livestream_status       text,
    room_name               text,
    max_participants        integer,
    -- The participant joined or replayed, in the columns (and casts) of PgParticipantRepository.
    id                      text,
    livestream_id           text,
    user_id                 text,
    display_name            text,
    role                    text,
    status                  text,
    metadata                jsonb,
    join_time               timestamptz,
    leave_time              timestamptz,
    livekit_participant_sid text,
    livekit_room_sid        text,
    connected               boolean
);

CREATE FUNCTION join_livestream(
    p_participant_id uuid, p_livestream_id uuid, p_user_id text, p_display_name text,
    p_role participant_role, p_metadata jsonb, p_request_id text, p_request_ttl_s double precision
) RETURNS join_result LANGUAGE plpgsql AS $$
DECLARE
    l livestreams%ROWTYPE;
    p participants%ROWTYPE;
    owner uuid;
    outcome text;
BEGIN
    <<checks>>
    BEGIN
        -- The lock serialises the joins of one livestream: every statement below runs on a
        -- snapshot taken after it was granted (READ COMMITTED, a VOLATILE function), so the
        -- already-joined and capacity checks see every join committed before this one.
        SELECT * INTO l FROM livestreams WHERE id = p_livestream_id FOR NO KEY UPDATE;
        IF NOT FOUND THEN
            outcome := 'NOT_FOUND';
            EXIT checks;
        END IF;
        IF l.status <> 'LIVE' THEN
            outcome := 'NOT_LIVE';
            EXIT checks;
        END IF;
        IF p_role = 'HOST' AND l.created_by <> p_user_id THEN
            outcome := 'HOST_RESERVED';
            EXIT checks;
        END IF;
        IF p_request_id IS NOT NULL THEN
            -- A retry of a join that went through: answer with that participant (a fresh token),
            -- before the already-joined check that it would otherwise fail.
            SELECT k.resource_id INTO owner FROM idempotency_keys k
            WHERE k.caller = p_user_id AND k.method = 'JoinLivestream'
              AND k.request_id = p_request_id AND k.expire_time > clock_timestamp();
            IF FOUND THEN
                SELECT * INTO p FROM participants WHERE id = owner;
                outcome := 'REPLAYED';
                EXIT checks;
            END IF;
        END IF;
        IF EXISTS (SELECT 1 FROM participants
                   WHERE livestream_id = l.id AND user_id = p_user_id AND status = 'JOINED') THEN
            outcome := 'ALREADY_JOINED';
            EXIT checks;
        END IF;
        IF p_role = 'VIEWER' AND (SELECT count(*) FROM participants
                                  WHERE livestream_id = l.id AND role = 'VIEWER'
                                    AND status = 'JOINED') >= l.max_participants THEN
            outcome := 'FULL';
            EXIT checks;
        END IF;
        IF p_request_id IS NOT NULL THEN
            -- Same claim as PgIdempotencyRepository: an expired key is taken over in place; a
            -- concurrent claim of the key (a join of another livestream, which our lock does not
            -- serialise with) waits on the primary key and then loses to the committed one.
            INSERT INTO idempotency_keys (caller, method, request_id, resource_id, expire_time)
            VALUES (p_user_id, 'JoinLivestream', p_request_id, p_participant_id,
                    clock_timestamp() + make_interval(secs => p_request_ttl_s))
            ON CONFLICT (caller, method, request_id) DO UPDATE
                SET resource_id = EXCLUDED.resource_id, expire_time = EXCLUDED.expire_time,
                    create_time = clock_timestamp()
                WHERE idempotency_keys.expire_time <= clock_timestamp()
            RETURNING resource_id INTO owner;
            IF NOT FOUND THEN
                SELECT k.resource_id INTO owner FROM idempotency_keys k
                WHERE k.caller = p_user_id AND k.method = 'JoinLivestream'
                  AND k.request_id = p_request_id;
                SELECT * INTO p FROM participants WHERE id = owner;
                outcome := 'REPLAYED';
                EXIT checks;
            END IF;
        END IF;
        -- The partial unique index still stands behind the check (unique_violation reaches the
        -- API as PARTICIPANT_ALREADY_JOINED, and nothing of this statement is kept).
        INSERT INTO participants (id, livestream_id, user_id, display_name, role, metadata)
        VALUES (p_participant_id, l.id, p_user_id, p_display_name, p_role, p_metadata)
        RETURNING * INTO p;
        outcome := 'JOINED';
    END;
    RETURN ROW(
        outcome, l.status::text, l.room_name, l.max_participants,
        p.id::text, p.livestream_id::text, p.user_id, p.display_name, p.role::text,
        p.status::text, p.metadata, p.join_time, p.leave_time, p.livekit_participant_sid,
        p.livekit_room_sid, p.connected
    )::join_result;
END;
$$;

-- Joins of one livestream that arrive together, in one statement and one commit. Every commit
-- that notifies (the participant triggers do) takes PostgreSQL's database-wide NOTIFY lock from
-- before its WAL flush until it ends, so notifying commits run one at a time, each waiting for
-- its own flush, and the livestream's row lock makes its joins take turns anyway: one commit per
-- join capped joins near 1 / (flush time) whatever the CPU. In array order, each join seeing the
-- ones before it (a duplicate of the same user is ALREADY_JOINED, a repeated request_id REPLAYED,
-- seats are counted exactly). Roles and metadata travel as text (JSON text for metadata): plain
-- arrays for the driver to encode.
CREATE FUNCTION join_livestreams(
    p_participant_ids uuid[], p_livestream_ids uuid[], p_user_ids text[],
    p_display_names text[], p_roles text[], p_metadata text[], p_request_ids text[],
    p_request_ttl_s double precision[]
) RETURNS SETOF join_result LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_participant_ids, 1), 0) LOOP
        RETURN NEXT join_livestream(
            p_participant_ids[i], p_livestream_ids[i], p_user_ids[i], p_display_names[i],
            p_roles[i]::participant_role, p_metadata[i]::jsonb, p_request_ids[i],
            p_request_ttl_s[i]);
    END LOOP;
END;
$$;
