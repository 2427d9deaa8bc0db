// Unary calls and errors against a running favorited (see env.ts).

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import {
  Code,
  ERROR_DOMAIN,
  errorDetails,
  LivestreamStatus,
  ParticipantRole,
  ParticipantStatus,
} from "../src/index.js";
import { serverClients, uniqueRoom } from "./env.js";

const { livestreams, participants } = serverClients();

test("unary: create, get, list, join and list participants", async () => {
  const room = uniqueRoom("ts-unary");
  const created = await livestreams.createLivestream({
    livestream: { roomName: room, title: "TypeScript client test" },
    requestId: randomUUID(),
  });
  const livestream = created.livestream;
  assert.ok(livestream);
  assert.equal(livestream.roomName, room);
  assert.equal(livestream.status, LivestreamStatus.LIVE);
  assert.equal(livestream.maxParticipants, 100);
  assert.ok(livestream.createTime, "create_time is set");

  const got = await livestreams.getLivestream({ livestreamId: livestream.id });
  assert.equal(got.livestream?.id, livestream.id);
  assert.equal(got.livestream?.title, "TypeScript client test");

  const listed = await livestreams.listLivestreams({
    createdBy: livestream.createdBy,
    status: LivestreamStatus.LIVE,
    pageSize: 100,
  });
  assert.ok(
    listed.livestreams.some((l) => l.id === livestream.id),
    "the new livestream is listed",
  );

  const joined = await participants.joinLivestream({
    livestreamId: livestream.id,
    displayName: "TS Host",
    role: ParticipantRole.HOST,
  });
  assert.equal(joined.participant?.role, ParticipantRole.HOST);
  assert.equal(joined.participant?.status, ParticipantStatus.JOINED);
  assert.match(joined.token, /^ey/, "a LiveKit JWT");
  assert.ok(joined.url.startsWith("http") || joined.url.startsWith("ws"));

  const members = await participants.listParticipants({ livestreamId: livestream.id });
  assert.deepEqual(
    members.participants.map((p) => p.id),
    [joined.participant?.id],
  );
});

test("error: NOT_FOUND carries ErrorInfo reason LIVESTREAM_NOT_FOUND", async () => {
  const missing = randomUUID();
  const err = await livestreams.getLivestream({ livestreamId: missing }).then(
    () => assert.fail("GetLivestream of a random id succeeded"),
    (e: unknown) => errorDetails(e),
  );
  assert.equal(err.code, Code.NotFound);
  assert.equal(err.reason, "LIVESTREAM_NOT_FOUND");
  assert.equal(err.domain, ERROR_DOMAIN);
  assert.equal(err.metadata["livestream"], missing);
  assert.ok(err.message.length > 0);
});

test("error: INVALID_ARGUMENT carries BadRequest field violations", async () => {
  const err = await livestreams
    .createLivestream({ livestream: { roomName: uniqueRoom("ts-bad") } })
    .then(
      () => assert.fail("CreateLivestream without a title succeeded"),
      (e: unknown) => errorDetails(e),
    );
  assert.equal(err.code, Code.InvalidArgument);
  assert.equal(err.domain, ERROR_DOMAIN);
  assert.ok(
    err.fieldViolations.some((v) => v.field === "livestream.title"),
    `violations: ${JSON.stringify(err.fieldViolations)}`,
  );
});

test("error: no token is UNAUTHENTICATED with reason TOKEN_MISSING", async () => {
  const anonymous = serverClients(false);
  const err = await anonymous.livestreams.listLivestreams({}).then(
    () => assert.fail("ListLivestreams without a token succeeded"),
    (e: unknown) => errorDetails(e),
  );
  assert.equal(err.code, Code.Unauthenticated);
  assert.equal(err.reason, "TOKEN_MISSING");
});
