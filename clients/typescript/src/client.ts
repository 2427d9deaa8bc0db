// The hand-written part of @favorited/api: what every caller needs on top of the generated code.
//
// - createFavoritedClients(): typed Connect clients over gRPC (HTTP/2, plaintext or TLS), with a
//   bearer token on every call, keepalive pings, and retries of UNAVAILABLE on GetXxx/ListXxx.
// - errorDetails(): the google.rpc.ErrorInfo reason and BadRequest field violations of a failure.

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Client, Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { GrpcTransportOptions } from "@connectrpc/connect-node";
import { LivestreamService } from "./gen/favorited/v1/livestream_service_pb.js";
import { ParticipantService } from "./gen/favorited/v1/participant_service_pb.js";
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";

/** The ErrorInfo domain of every favorited error. */
export const ERROR_DOMAIN = "favorited.v1";

/** A caller token, or a function returning the current one (called before every RPC). */
export type TokenSource = string | (() => string | Promise<string>);

export interface RetryOptions {
  /** Attempts in total, including the first. 1 disables retries. Default 4. */
  maxAttempts?: number;
  /** Backoff before the first retry, doubled each time up to maxBackoffMs. Default 100 ms. */
  initialBackoffMs?: number;
  /** Default 2,000 ms. */
  maxBackoffMs?: number;
}

export interface FavoritedClientOptions {
  /** Where favorited listens, e.g. "http://localhost:50051" (plaintext) or "https://…" (TLS). */
  baseUrl: string;
  /** The caller's JWT (from `favorited token`); sent as `authorization: Bearer <token>`. */
  token?: TokenSource;
  /**
   * Deadline for calls that do not pass their own timeoutMs. Default none. It applies to Watch
   * streams too: pass `timeoutMs: 0` on a Watch call to let it run.
   */
  defaultTimeoutMs?: number;
  /** Retries of UNAVAILABLE on GetXxx and ListXxx calls; see retryIdempotentReads. */
  retry?: RetryOptions;
  /** Anything else for Connect's gRPC transport (interceptors are appended after ours). */
  transport?: Partial<GrpcTransportOptions>;
}

export interface FavoritedClients {
  livestreams: Client<typeof LivestreamService>;
  participants: Client<typeof ParticipantService>;
  transport: Transport;
}

/** Adds `authorization: Bearer <token>` to every request. */
export function bearerAuth(token: TokenSource): Interceptor {
  return (next) => async (req) => {
    const value = typeof token === "string" ? token : await token();
    req.header.set("authorization", `Bearer ${value}`);
    return await next(req);
  };
}

/**
 * Retries a unary GetXxx or ListXxx call that failed UNAVAILABLE (favorited's "a dependency was
 * unreachable, nothing changed" answer), with exponential backoff, within the call's own deadline
 * and abort signal. Nothing else is retried: Create/Join/Update/Delete/Leave/Remove may have taken
 * effect (send a request_id and retry those yourself), and a stream that broke is resumed by the
 * caller (WatchParticipants' after_sequence).
 */
export function retryIdempotentReads(options: RetryOptions = {}): Interceptor {
  const maxAttempts = Math.max(1, options.maxAttempts ?? 4);
  const initial = options.initialBackoffMs ?? 100;
  const max = options.maxBackoffMs ?? 2_000;
  return (next) => async (req) => {
    if (req.stream || !/^(Get|List)[A-Z]/.test(req.method.name)) {
      return await next(req);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await next(req);
      } catch (err) {
        const code = ConnectError.from(err).code;
        if (code !== Code.Unavailable || attempt >= maxAttempts || req.signal.aborted) {
          throw err;
        }
        const backoff = Math.min(max, initial * 2 ** (attempt - 1));
        await sleep(backoff * (0.8 + Math.random() * 0.4), req.signal);
      }
    }
  };
}

/** One transport (one HTTP/2 connection, shared by both clients) with our defaults. */
export function createFavoritedTransport(options: FavoritedClientOptions): Transport {
  const interceptors: Interceptor[] = [retryIdempotentReads(options.retry)];
  if (options.token !== undefined) {
    // The last interceptor runs closest to the wire, so every retry carries a fresh token.
    interceptors.push(bearerAuth(options.token));
  }
  return createGrpcTransport({
    // Keepalive: find a dead connection in ~40 s even while a Watch stream is quiet. The server
    // accepts pings without data every 10 s at most, so stay well above that.
    pingIntervalMs: 30_000,
    pingTimeoutMs: 10_000,
    pingIdleConnection: true,
    ...options.transport,
    baseUrl: options.baseUrl,
    ...(options.defaultTimeoutMs === undefined
      ? {}
      : { defaultTimeoutMs: options.defaultTimeoutMs }),
    interceptors: [...interceptors, ...(options.transport?.interceptors ?? [])],
  });
}

/** Typed clients for both services over one transport. */
export function createFavoritedClients(options: FavoritedClientOptions): FavoritedClients {
  const transport = createFavoritedTransport(options);
  return {
    livestreams: createClient(LivestreamService, transport),
    participants: createClient(ParticipantService, transport),
    transport,
  };
}

export interface FieldViolation {
  field: string;
  description: string;
}

/** What a failed call tells the caller, with google.rpc details decoded. */
export interface ErrorDetails {
  /** The gRPC status code, e.g. Code.NotFound. */
  code: Code;
  /** The server's message, without Connect's "[not_found]" prefix. */
  message: string;
  /** ErrorInfo.reason, e.g. "LIVESTREAM_NOT_FOUND"; "" when the error carried no ErrorInfo. */
  reason: string;
  /** ErrorInfo.domain; "favorited.v1" for favorited's own errors. */
  domain: string;
  /** ErrorInfo.metadata: dynamic context such as the livestream id. */
  metadata: Record<string, string>;
  /** BadRequest field violations (INVALID_ARGUMENT only). */
  fieldViolations: FieldViolation[];
}

/**
 * Decodes any error thrown by a favorited client call. Errors that are not ConnectErrors (a bug in
 * the caller's code, say) come back as Code.Unknown with their message.
 */
export function errorDetails(err: unknown): ErrorDetails {
  const error = ConnectError.from(err);
  const info = error.findDetails(ErrorInfoSchema)[0];
  const fieldViolations = error
    .findDetails(BadRequestSchema)
    .flatMap((bad) => bad.fieldViolations)
    .map((v) => ({ field: v.field, description: v.description }));
  return {
    code: error.code,
    message: error.rawMessage,
    reason: info?.reason ?? "",
    domain: info?.domain ?? "",
    metadata: { ...(info?.metadata ?? {}) },
    fieldViolations,
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(ConnectError.from(signal.reason, Code.Canceled));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
