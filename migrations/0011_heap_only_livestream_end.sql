-- Ending a livestream updates its participants in place (heap-only tuples, no index entries).
--
-- end_livestream() (0009) sets every JOINED participant of the livestream LEFT in one UPDATE.
-- That UPDATE changed `status`, which two partial indexes name in their predicates, so no row
-- qualified for a heap-only (HOT) update: every ended row got a new entry in the primary key and
-- in the three other indexes whose predicate it still met. Measured on PostgreSQL 15 with 100,000
-- JOINED participants (one transaction, rolled back, table vacuumed between runs): 2.6–2.9 s; with
-- the three secondary indexes dropped 1.6–1.7 s; with every update heap-only 0.58–0.80 s.
--
-- So no index names `status` any more. participants_one_joined_key (one JOINED participant per
-- livestream and user) is now partial on `in_roster`, a generated column that is true for a
-- JOINED participant and for one its livestream's end set LEFT (the livestream's final roster).
-- The end turns `status` to LEFT and `ended_with_livestream` to true in the same row, so
-- `in_roster` stays true and no indexed value changes: the update is heap-only wherever the page
-- has room for the new row version. In production a row gets two new versions before the end, not
-- one: JoinLivestream inserts it unconnected, then LiveKit's participant_joined webhook binds its
-- sid (an indexed column, so that update is not heap-only; the row grows, and its first version
-- keeps its line pointer until a vacuum). A fill factor of 35 leaves room for both. Measured on a
-- fresh table of 100,000 participants joined, then bound, then ended: heap-only for 78 % of the
-- end's rows at a fill factor of 45, 92 % at 40, all at 35 (0.87–1.06 s, against 3.53 s before this
-- migration); the heap after the binding pass is 37 MB at 35 against 29 MB at the default 100, and
-- the table with its indexes after the end 80 MB against 93 MB, since the index entries the end no
-- longer writes outweigh the room. Later HOT updates and page pruning recycle that room as they go,
-- and where a page has none left an update simply is not heap-only. A participant who leaves by
-- themselves (LeaveLivestream, a webhook, the reconciliation) leaves the roster and updates its
-- indexes as before.
--
-- Uniqueness is unchanged where it matters: at most one JOINED participant per (livestream, user)
-- while the livestream is live, where `in_roster` is exactly `status = 'JOINED'`: only the end
-- sets ended_with_livestream, in the statement that makes the livestream ENDED for good, and every
-- JOINED insert checks LIVE under the livestream's row lock. The index keeps its name, which the
-- service maps to ALREADY_EXISTS. The index does keep an entry for every participant its
-- livestream's end left on the roster, where it used to hold only the JOINED ones.
--
-- participants_joined_role_idx (livestream_id, role) WHERE status = 'JOINED' goes too. Its last
-- readers were the scans of a livestream's JOINED participants (the Watch snapshot, the
-- reconciliation, the end); they now say `status = 'JOINED' AND in_roster`, redundant in meaning,
-- so that the planner can use the roster key for them instead. Lookups of one user's JOINED row
-- (`status = 'JOINED'` alone, in join_livestream and the webhook functions) use the
-- (livestream_id, user_id, join_time) index and read that user's LEFT rows of the livestream too.
--
-- Applying it: adding a stored generated column rewrites the table, and the indexes are rebuilt,
-- under an ACCESS EXCLUSIVE lock that blocks every read and write of participants until the
-- migration commits; the rewrite packs the existing rows at the new fill factor, so the heap of
-- rows that will not be updated again grows to about 2.9 times its size. Run it in a maintenance
-- window on a big table. The lock is taken first (no upgrade from the fill factor's weaker lock)
-- and waited for 10 s at most, so a long transaction makes the migration fail and be retried
-- instead of queueing every query behind it.

SET LOCAL lock_timeout = '10s';
LOCK TABLE participants IN ACCESS EXCLUSIVE MODE;

ALTER TABLE participants SET (fillfactor = 35);
ALTER TABLE participants
    ADD COLUMN in_roster boolean NOT NULL
        GENERATED ALWAYS AS (status = 'JOINED' OR ended_with_livestream) STORED;

DROP INDEX participants_one_joined_key;
CREATE UNIQUE INDEX participants_one_joined_key
    ON participants (livestream_id, user_id) WHERE in_roster;
DROP INDEX participants_joined_role_idx;

-- As in 0009, with `AND in_roster` so that the end reads the livestream's JOINED rows through
-- the roster key, not all of its rows.
CREATE OR REPLACE FUNCTION end_livestream(p_id uuid) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_sequence bigint;
BEGIN
    UPDATE livestreams
    SET status = 'ENDED', end_time = clock_timestamp(), viewer_count = 0, joined_viewer_count = 0,
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
    WHERE livestream_id = p_id AND status = 'JOINED' AND in_roster;
    INSERT INTO participant_events (livestream_id, sequence, type, participant)
    VALUES (p_id, v_sequence, 'LIVESTREAM_ENDED', NULL);
    PERFORM pg_notify('favorited_participant_events', p_id::text);
    RETURN true;
END;
$$;
