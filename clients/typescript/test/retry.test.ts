// The helper's interceptors against an in-process Connect server speaking gRPC: the bearer token
// on every call, UNAVAILABLE retried on GetXxx/ListXxx only. Needs no running favorited.

import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  CreateLivestreamResponseSchema,
  createFavoritedClients,
  errorDetails,
  GetLivestreamResponseSchema,
  LivestreamService,
} from "../src/index.js";

const calls: { method: string; authorization: string | null }[] = [];
let failuresLeft = 0;

function routes(router: ConnectRouter): void {
  router.service(LivestreamService, {
    getLivestream(req, ctx) {
      const authorization = ctx.requestHeader.get("authorization");
      calls.push({ method: "GetLivestream", authorization });
      if (failuresLeft > 0) {
        failuresLeft--;
        throw new ConnectError("database unreachable", Code.Unavailable);
      }
      return create(GetLivestreamResponseSchema, { livestream: { id: req.livestreamId } });
    },
    createLivestream(_req, ctx) {
      const authorization = ctx.requestHeader.get("authorization");
      calls.push({ method: "CreateLivestream", authorization });
      if (failuresLeft > 0) {
        failuresLeft--;
        throw new ConnectError("livekit unreachable", Code.Unavailable);
      }
      return create(CreateLivestreamResponseSchema, {});
    },
  });
}

const server = http2.createServer(connectNodeAdapter({ routes }));
const sessions = new Set<http2.ServerHttp2Session>();
server.on("session", (session) => {
  sessions.add(session);
  session.on("close", () => sessions.delete(session));
});
let baseUrl = "";

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  // The clients keep their HTTP/2 connections open; close them from this side.
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const session of sessions) {
    session.destroy();
  }
  await closed;
});

function clients(token = "t0ken") {
  return createFavoritedClients({
    baseUrl,
    token,
    retry: { initialBackoffMs: 1, maxBackoffMs: 5 },
    transport: { pingIdleConnection: false },
  });
}

test("a Get call is retried on UNAVAILABLE, carrying the token every time", async () => {
  calls.length = 0;
  failuresLeft = 2;
  const res = await clients().livestreams.getLivestream({ livestreamId: "abc" });
  assert.equal(res.livestream?.id, "abc");
  assert.deepEqual(calls, [
    { method: "GetLivestream", authorization: "Bearer t0ken" },
    { method: "GetLivestream", authorization: "Bearer t0ken" },
    { method: "GetLivestream", authorization: "Bearer t0ken" },
  ]);
});

test("retries stop after maxAttempts", async () => {
  calls.length = 0;
  failuresLeft = 10;
  const err = await clients()
    .livestreams.getLivestream({ livestreamId: "abc" })
    .then(
      () => assert.fail("succeeded"),
      (e: unknown) => errorDetails(e),
    );
  assert.equal(err.code, Code.Unavailable);
  assert.equal(calls.length, 4);
  failuresLeft = 0;
});

test("a Create call is never retried", async () => {
  calls.length = 0;
  failuresLeft = 1;
  const err = await clients()
    .livestreams.createLivestream({})
    .then(
      () => assert.fail("succeeded"),
      (e: unknown) => errorDetails(e),
    );
  assert.equal(err.code, Code.Unavailable);
  assert.equal(err.message, "livekit unreachable");
  assert.equal(calls.length, 1);
  failuresLeft = 0;
});

test("a token function is asked before each call", async () => {
  calls.length = 0;
  let n = 0;
  const fresh = createFavoritedClients({ baseUrl, token: () => `tok-${++n}` });
  await fresh.livestreams.getLivestream({ livestreamId: "a" });
  await fresh.livestreams.getLivestream({ livestreamId: "b" });
  assert.deepEqual(
    calls.map((c) => c.authorization),
    ["Bearer tok-1", "Bearer tok-2"],
  );
});
