"""Build the grpc.aio server: servicers, health, reflection, interceptor and transport limits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from favorited.api.auth import Authenticator
from favorited.api.interceptor import EdgeInterceptor
from favorited.api.livestreams import LivestreamServicer
from favorited.api.participants import ParticipantServicer
from favorited.metrics import Metrics
from favorited_api.v1 import livestream_service_pb2, participant_service_pb2
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from favorited_api.v1 import participant_service_pb2_grpc as ps_grpc

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    livestream_service_pb2.DESCRIPTOR.services_by_name["LivestreamService"].full_name,
    participant_service_pb2.DESCRIPTOR.services_by_name["ParticipantService"].full_name,
)

# Requests are small; a 1 MiB cap stops a hostile client from making us buffer large bodies.
# Keepalive pings find dead peers (and keep idle Watch streams open through proxies) without
# letting a client ping-flood us.
_OPTIONS = [
    ("grpc.max_receive_message_length", 1024 * 1024),
    ("grpc.max_send_message_length", 4 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 3),
    ("grpc.so_reuseport", 0),
]


def build_server(
    *,
    livestreams: LivestreamServicer,
    participants: ParticipantServicer,
    health_servicer: health.aio.HealthServicer,
    authenticator: Authenticator,
    metrics: Metrics,
    max_concurrent_rpcs: int,
) -> grpc.aio.Server:
    server = grpc.aio.server(
        interceptors=[EdgeInterceptor(authenticator, metrics)],
        options=_OPTIONS,
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )
    ls_grpc.add_LivestreamServiceServicer_to_server(livestreams, server)
    ps_grpc.add_ParticipantServiceServicer_to_server(participants, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    return server


async def probe_health(
    health_servicer: health.aio.HealthServicer,
    ping: Callable[[float], Awaitable[bool]],
    *,
    interval_s: float,
) -> None:
    """Report NOT_SERVING (overall and per service) while PostgreSQL does not answer."""
    serving: bool | None = None
    while True:
        ok = await ping(min(interval_s, 1.0))
        if ok != serving:
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if ok
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for name in ("", *SERVICE_NAMES):
                await health_servicer.set(name, status)
            log.info("health changed", extra={"serving": ok})
            serving = ok
        await asyncio.sleep(interval_s)
