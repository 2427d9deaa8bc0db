-- Ending a livestream writes ONE event, LIVESTREAM_ENDED ("every JOINED participant left"), instead
-- of one LEFT event per participant.
--
-- Measured on a 100,000-participant livestream: the per-participant LEFT events cost more than the
-- UPDATE that ends the participants (a to_jsonb image, a sequence and two index entries each, in
-- one statement-level trigger), and every watcher then had to receive 100,000 messages to learn
-- what one message says. Watchers of an ended livestream get this event, then the stream completes.
-- This migration changes the schema for it; the functions that write it are in 0007.

ALTER TYPE participant_event_type ADD VALUE 'LIVESTREAM_ENDED';

-- The end event is about the livestream, not a participant. (The new enum value cannot be named in
-- this transaction, so the check compares its text.)
ALTER TABLE participant_events ALTER COLUMN participant DROP NOT NULL;
ALTER TABLE participant_events ADD CONSTRAINT participant_events_participant_check
    CHECK ((participant IS NULL) = (type::text = 'LIVESTREAM_ENDED'));

-- Rows ended by their livestream's end are marked, so the participant trigger (0007) skips them
-- without looking anything up: the end is one event, written by end_livestream() (0007).
ALTER TABLE participants ADD COLUMN ended_with_livestream boolean NOT NULL DEFAULT false;

-- The per-row guard (0001) runs a PL/pgSQL function for every updated row, mostly to set
-- update_time: for 100,000 rows that was a fifth of the end. It now runs only where it has work: a
-- row that already left (the invariants to enforce), or an UPDATE that did not set update_time
-- itself. Statements that set update_time explicitly on JOINED rows skip it.
DROP TRIGGER participants_guard ON participants;
CREATE TRIGGER participants_guard BEFORE UPDATE ON participants
    FOR EACH ROW
    WHEN (OLD.status = 'LEFT' OR NEW.update_time IS NOT DISTINCT FROM OLD.update_time)
    EXECUTE FUNCTION participants_guard();
