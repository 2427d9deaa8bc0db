// The WatchParticipants server stream against a running favorited (see env.ts): the snapshot
// first, then a change event for a join made after the snapshot completed.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  Code,
  ConnectError,
  ParticipantEventType,
  ParticipantRole,
  ParticipantStatus,
} from "../src/index.js";
import type { ParticipantEvent, ParticipantSnapshot } from "../src/index.js";
import { serverClients, uniqueRoom } from "./env.js";

const { livestreams, participants } = serverClients();

const name = "server stream: WatchParticipants sends the snapshot, then changes";

test(name, { timeout: 30_000 }, async (t) => {
  const created = await livestreams.createLivestream({
    livestream: { roomName: uniqueRoom("ts-watch"), title: "Watch test" },
  });
  const livestreamId = created.livestream?.id ?? assert.fail("no livestream");

  const abort = new AbortController();
  const kinds: string[] = [];
  const snapshots: ParticipantSnapshot[] = [];
  let joinedId: string | undefined;
  let change: ParticipantEvent | undefined;
  try {
    const stream = participants.watchParticipants(
      { livestreamId },
      { signal: abort.signal },
    );
    for await (const { event } of stream) {
      kinds.push(event.case ?? "unset");
      if (event.case === "snapshot") {
        snapshots.push(event.value);
        if (event.value.complete) {
          // Caught up: a join from now on must arrive as a change, not in the snapshot.
          const joined = await participants.joinLivestream({
            livestreamId,
            displayName: "Watch test host",
            role: ParticipantRole.HOST,
          });
          joinedId = joined.participant?.id;
        }
      } else if (event.case === "change" && event.value.participant?.id === joinedId) {
        change = event.value;
        break;
      }
    }
  } catch (err) {
    if (kinds.length === 0 && ConnectError.from(err).code === Code.Unimplemented) {
      t.skip("WatchParticipants not implemented yet");
      return;
    }
    throw err;
  } finally {
    abort.abort();
  }

  assert.equal(kinds[0], "snapshot", `the stream starts with the snapshot: ${kinds.join(",")}`);
  assert.deepEqual(
    snapshots.flatMap((s) => s.participants),
    [],
    "nobody had joined yet",
  );
  const snapshotSequence = snapshots.at(-1)?.sequence ?? assert.fail("no complete snapshot");
  assert.ok(change, `a change for the join arrived: ${kinds.join(",")}`);
  assert.equal(change.type, ParticipantEventType.JOINED);
  assert.equal(change.participant?.status, ParticipantStatus.JOINED);
  assert.ok(change.sequence > snapshotSequence, "changes follow the snapshot's sequence");
});
