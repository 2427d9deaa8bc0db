// Where the tests find a running favorited: FAVORITED_ADDRESS (host:port) and FAVORITED_TOKEN (a
// caller JWT, e.g. from `favorited token --user alice` or the `favorited dev` banner).

import { createFavoritedClients } from "../src/index.js";
import type { FavoritedClients } from "../src/index.js";

export function serverClients(withToken = true): FavoritedClients {
  const address = process.env["FAVORITED_ADDRESS"];
  const token = process.env["FAVORITED_TOKEN"];
  if (!address || !token) {
    throw new Error(
      "set FAVORITED_ADDRESS (host:port of a running favorited) and FAVORITED_TOKEN (a caller JWT)",
    );
  }
  return createFavoritedClients({
    baseUrl: `http://${address}`,
    ...(withToken ? { token } : {}),
  });
}

export function uniqueRoom(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
