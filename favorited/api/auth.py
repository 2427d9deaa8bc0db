"""Caller authentication: HS256 bearer JWTs in `authorization` metadata.

`sub` is the caller's user id, `exp` is required, and a `scope` claim (space-separated string or
list) containing `favorited:admin` marks an operator or trusted service. Identity comes from the
token only; request bodies never carry it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

import jwt

from favorited import errors
from favorited.domain import models, rules

ADMIN_SCOPE = "favorited:admin"
_LEEWAY_S = 30

# Set by the interceptor for the duration of one RPC (each RPC runs in its own task/context).
_caller: ContextVar[models.Caller] = ContextVar("favorited_caller")


def current_caller() -> models.Caller:
    """The authenticated caller of the RPC being served."""
    return _caller.get()


def bind_caller(caller: models.Caller) -> None:
    _caller.set(caller)


class Authenticator:
    """Verifies caller tokens with one HS256 secret."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def authenticate(self, metadata: Sequence[tuple[str, str | bytes]]) -> models.Caller:
        header = next((v for k, v in metadata if k == "authorization"), None)
        if header is None:
            raise _unauthenticated(
                "Missing `authorization: Bearer <token>` metadata.", "TOKEN_MISSING"
            )
        text = header.decode() if isinstance(header, bytes) else header
        scheme, _, token = text.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthenticated(
                "The authorization metadata must be `Bearer <token>`.", "TOKEN_MALFORMED"
            )
        try:
            claims = jwt.decode(
                token.strip(),
                self._secret,
                algorithms=["HS256"],
                options={"require": ["exp", "sub"]},
                leeway=_LEEWAY_S,
            )
        except jwt.ExpiredSignatureError:
            raise _unauthenticated("The token has expired.", "TOKEN_EXPIRED") from None
        except jwt.InvalidTokenError:
            raise _unauthenticated("The token is invalid.", "TOKEN_INVALID") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > rules.USER_ID_MAX or "\x00" in sub:
            raise _unauthenticated("The token's subject is not a valid user id.", "TOKEN_INVALID")
        return models.Caller(user_id=sub, is_admin=ADMIN_SCOPE in _scopes(claims.get("scope")))

    def mint(self, user_id: str, *, admin: bool = False, ttl: timedelta) -> str:
        """A caller token, for `favorited token`, `favorited dev` and tests."""
        now = datetime.now(UTC)
        claims: dict[str, object] = {"sub": user_id, "iat": now, "exp": now + ttl}
        if admin:
            claims["scope"] = ADMIN_SCOPE
        return jwt.encode(claims, self._secret, algorithm="HS256")


def _scopes(raw: object) -> set[str]:
    if isinstance(raw, str):
        return set(raw.split())
    if isinstance(raw, list):
        return {s for s in raw if isinstance(s, str)}
    return set()


def _unauthenticated(message: str, reason: str) -> errors.UnauthenticatedError:
    return errors.UnauthenticatedError(message, reason=reason)
