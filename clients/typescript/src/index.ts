// @favorited/api: generated messages and service descriptors for favorited.v1 (src/gen, written by
// tools/gen_protos.py, never edited) and a small hand-written helper (src/client.ts).

export * from "./gen/favorited/v1/livestream_pb.js";
export * from "./gen/favorited/v1/livestream_service_pb.js";
export * from "./gen/favorited/v1/participant_pb.js";
export * from "./gen/favorited/v1/participant_service_pb.js";
export { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";
export type { BadRequest, ErrorInfo } from "./gen/google/rpc/error_details_pb.js";
export * from "./client.js";
export { Code, ConnectError } from "@connectrpc/connect";
