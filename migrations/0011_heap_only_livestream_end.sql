-- Ending a livestream updates its participants in place (heap-only tuples, no index entries).
--
-- end_livestream() (0009) sets every JOINED participant of the livestream LEFT in one UPDATE.
-- That UPDATE changed `status`, which two partial indexes name in their predicates, so no row
-- qualified for a heap-only (HOT) update: every ended row got a new entry in the primary key and
-- in the three other indexes whose predicate it still met. Measured on PostgreSQL 15 with 100,000
-- JOINED participants (one transaction, rolled back, table vacuumed between runs): 2.6–2.9 s; with
-- the three secondary indexes dropped 1.6–1.7 s; with every update heap-only 0.58–0.80 s.
--
-- So no index names `status` any more. participants_joined_role_idx goes: it served the capacity
-- count, which 0009 replaced with a counter on the livestream row, and nothing else reads it.
-- participants_one_joined_key names `in_roster` instead, a generated column that is true for a
-- JOINED participant and for one its livestream's end set LEFT (the livestream's final roster). The end turns `status` to LEFT and
-- `ended_with_livestream` to true in the same row, so `in_roster` stays true and no indexed value
-- changes: the update is heap-only wherever the page has room for the new row version. A fill
-- factor of 45 leaves room for one update of every row on the page (at 50 the page header and the
-- new line pointers left the last row of some pages without room); later HOT updates and page
-- pruning recycle that room as they go. A participant who leaves by themselves
-- (LeaveLivestream, a webhook, the reconciliation) still leaves the roster and updates its indexes
-- as before.
--
-- Uniqueness is unchanged where it matters: at most one JOINED participant per (livestream, user)
-- while the livestream is live, where `in_roster` is exactly `status = 'JOINED'` (only the end
-- sets ended_with_livestream, and an ended livestream takes no joins). The index keeps its name,
-- which the service maps to ALREADY_EXISTS. A query for JOINED rows still says
-- `status = 'JOINED'`; the planner then uses the (livestream_id, user_id, join_time) or
-- (livestream_id, join_time, id) index instead of a partial one, at the cost of also reading the
-- livestream's LEFT rows of that user or page.
--
-- Adding a stored generated column rewrites the table under an ACCESS EXCLUSIVE lock, and the
-- rewrite packs the existing rows at the new fill factor.

ALTER TABLE participants SET (fillfactor = 45);
ALTER TABLE participants
    ADD COLUMN in_roster boolean NOT NULL
        GENERATED ALWAYS AS (status = 'JOINED' OR ended_with_livestream) STORED;

DROP INDEX participants_one_joined_key;
CREATE UNIQUE INDEX participants_one_joined_key
    ON participants (livestream_id, user_id) WHERE in_roster;
DROP INDEX participants_joined_role_idx;
