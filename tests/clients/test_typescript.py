"""clients/typescript builds with tsc (strict) and its own tests pass against a running favorited:
unary calls, errors with their reasons, the WatchParticipants stream, and the example.

Needs Node >= 20 and clients/typescript/node_modules (scripts/setup-typescript)."""

from __future__ import annotations

import re
import shutil
from typing import TYPE_CHECKING

import pytest

from tests.clients._support import REPO, env, run, skip_unless_watch_participants

if TYPE_CHECKING:
    from collections.abc import Callable

    import grpc

    from favorited.app import ApiApp
    from tests.clients._support import Result
    from tests.conftest import Metadata

TS = REPO / "clients" / "typescript"


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is not on PATH (Node >= 20 is needed)"
    return path


@pytest.fixture(scope="module")
async def built() -> None:
    assert (TS / "node_modules").is_dir(), "run scripts/setup-typescript first"
    result = await run([_tool("npm"), "run", "--silent", "build"], cwd=TS, time_limit=110)
    assert result.returncode == 0, result


def _server_env(api: ApiApp, auth: Callable[..., Metadata]) -> dict[str, str]:
    token = str(auth("alice")[0][1]).removeprefix("Bearer ")
    return env(FAVORITED_ADDRESS=f"127.0.0.1:{api.port}", FAVORITED_TOKEN=token)


def _tap_summary(result: Result) -> dict[str, int]:
    summary = dict(
        re.findall(r"^# (tests|pass|fail|skipped|cancelled|todo) (\d+)$", result.stdout, re.M)
    )
    assert summary, result
    return {k: int(v) for k, v in summary.items()}


async def _node_tests(
    api: ApiApp, auth: Callable[..., Metadata], *files: str
) -> tuple[Result, dict[str, int]]:
    result = await run(
        [_tool("node"), "--test", "--test-reporter=tap", *(f"dist/test/{f}" for f in files)],
        cwd=TS,
        environ=_server_env(api, auth),
    )
    return result, _tap_summary(result)


@pytest.mark.timeout(120)
async def test_unary_calls_errors_and_helper(
    built: None, api: ApiApp, auth: Callable[..., Metadata]
) -> None:
    result, summary = await _node_tests(api, auth, "retry.test.js", "api.test.js")
    assert result.returncode == 0, result
    assert summary["fail"] == summary["skipped"] == summary["cancelled"] == 0, result
    assert summary["pass"] == summary["tests"] >= 8, result
    for name in ("unary: create, get, list", "LIVESTREAM_NOT_FOUND", "field violations"):
        assert re.search(rf"^ok \d+ - .*{re.escape(name)}", result.stdout, re.M), result


@pytest.mark.timeout(120)
async def test_watch_participants_stream(
    built: None, api: ApiApp, auth: Callable[..., Metadata], channel: grpc.aio.Channel
) -> None:
    await skip_unless_watch_participants(channel, auth("alice"))
    result, summary = await _node_tests(api, auth, "watch.test.js")
    assert result.returncode == 0, result
    assert summary == {**summary, "tests": 1, "pass": 1, "fail": 0, "skipped": 0}, result


@pytest.mark.timeout(120)
async def test_example_runs_against_the_server(
    built: None, api: ApiApp, auth: Callable[..., Metadata]
) -> None:
    result = await run(
        [_tool("node"), "dist/examples/quickstart.js"], cwd=TS, environ=_server_env(api, auth)
    )
    assert result.returncode == 0, result
    assert re.search(r"^created \S+ in room quickstart-\w+: LIVE$", result.stdout, re.M), result
    assert "joined as HOST" in result.stdout, result
    assert "a random id: NotFound LIVESTREAM_NOT_FOUND" in result.stdout, result
    assert "ended: ENDED" in result.stdout, result
