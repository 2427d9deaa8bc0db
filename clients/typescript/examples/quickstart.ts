// A first call to favorited from TypeScript. Start the service with `favorited dev` (or
// ./scripts/dev) in another terminal, copy the caller token from its banner, then:
//
//   cd clients/typescript && npm ci
//   FAVORITED_TOKEN=<token> npm run example
//
// FAVORITED_ADDRESS defaults to localhost:50051. In your own service, import from "@favorited/api"
// instead of "../src/index.js".

import { randomUUID } from "node:crypto";
import {
  Code,
  createFavoritedClients,
  errorDetails,
  LivestreamStatus,
  ParticipantRole,
} from "../src/index.js";

async function main(): Promise<void> {
  const address = process.env["FAVORITED_ADDRESS"] ?? "localhost:50051";
  const token = process.env["FAVORITED_TOKEN"];
  if (!token) {
    throw new Error("set FAVORITED_TOKEN to a caller token (see the `favorited dev` banner)");
  }
  const { livestreams, participants } = createFavoritedClients({
    baseUrl: `http://${address}`,
    token,
    defaultTimeoutMs: 10_000,
  });

  // Create: request_id makes a retry of this exact call safe (it returns the same livestream).
  const { livestream } = await livestreams.createLivestream({
    livestream: { roomName: `quickstart-${randomUUID().slice(0, 8)}`, title: "Quickstart" },
    requestId: randomUUID(),
  });
  if (!livestream) throw new Error("CreateLivestream returned no livestream");
  const status = LivestreamStatus[livestream.status];
  console.log(`created ${livestream.id} in room ${livestream.roomName}: ${status}`);

  // Join as the host: the answer carries a LiveKit token and URL for the room.
  const joined = await participants.joinLivestream({
    livestreamId: livestream.id,
    displayName: "Quickstart host",
    role: ParticipantRole.HOST,
  });
  const role = ParticipantRole[joined.participant?.role ?? ParticipantRole.UNSPECIFIED];
  console.log(`joined as ${role}; LiveKit at ${joined.url}`);

  const { livestreams: live } = await livestreams.listLivestreams({
    status: LivestreamStatus.LIVE,
    pageSize: 10,
  });
  console.log(`${live.length} live livestream(s) on the first page`);

  // Errors: branch on the stable ErrorInfo reason, not on the message.
  try {
    await livestreams.getLivestream({ livestreamId: randomUUID() });
  } catch (err) {
    const details = errorDetails(err);
    if (details.code !== Code.NotFound) throw err;
    console.log(`a random id: ${Code[details.code]} ${details.reason}`);
  }

  // End it: the LiveKit room is deleted and every participant leaves.
  const ended = await livestreams.deleteLivestream({ livestreamId: livestream.id });
  const final = ended.livestream?.status ?? LivestreamStatus.UNSPECIFIED;
  console.log(`ended: ${LivestreamStatus[final]}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
