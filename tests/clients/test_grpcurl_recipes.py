"""The grpcurl recipes in README.md run as printed, with grpcurl from PyPI (.venv/bin/grpcurl).

Every ```sh block between <!-- grpcurl:start --> and <!-- grpcurl:end --> runs in order, in one
bash session as an operator would paste them, against the test server. The only changes: the
address (localhost:50051 → the test server's port) and the environment the README asks for
(FAVORITED_JWT_SECRET = the server's secret, for `favorited token`; the virtualenv on PATH).

The two "# Terminal N" blocks run side by side: terminal 1 watches, terminal 2 makes changes.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from typing import TYPE_CHECKING

import pytest

from tests.clients._support import REPO, env, run, skip_unless_watch_participants
from tests.conftest import JWT_SECRET

if TYPE_CHECKING:
    from collections.abc import Callable

    import grpc

    from favorited.app import ApiApp
    from tests.conftest import Metadata

README_ADDRESS = "localhost:50051"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def readme_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("<!-- grpcurl:start -->") : text.index("<!-- grpcurl:end -->")]
    return re.findall(r"^```sh\n(.*?)^```$", section, re.M | re.S)


def _terminal(blocks: list[str], n: int) -> int:
    (index,) = [i for i, b in enumerate(blocks) if b.startswith(f"# Terminal {n}\n")]
    return index


def _script(blocks: list[str], port: int, *, show_env: bool = False) -> str:
    parts = ["set -eo pipefail"]
    for i, block in enumerate(blocks):
        parts += [f"echo '::block {i}::'", block.replace(README_ADDRESS, f"127.0.0.1:{port}")]
    if show_env:
        parts.append(
            'printf "::env::\\nTOKEN=%s\\nBOB_TOKEN=%s\\nLIVESTREAM_ID=%s\\n" '
            '"$TOKEN" "$BOB_TOKEN" "$LIVESTREAM_ID"'
        )
    return "\n".join(parts) + "\n"


def _recipe_env() -> dict[str, str]:
    assert shutil.which("jq"), "the README's recipes use jq"
    return env(FAVORITED_JWT_SECRET=JWT_SECRET)


def test_the_readme_has_the_promised_recipes() -> None:
    text = "\n".join(readme_blocks())
    for needle in (
        " list",
        " describe favorited.v1.",
        "grpc.health.v1.Health/Check",
        "favorited token --user",
        "LivestreamService/CreateLivestream",
        "ParticipantService/JoinLivestream",
        "LivestreamService/ListLivestreams",
        "ParticipantService/WatchParticipants",
    ):
        assert needle in text, needle
    assert {_terminal(readme_blocks(), 1) + 1} == {_terminal(readme_blocks(), 2)}


@pytest.mark.timeout(120)
async def test_recipes_run_as_printed(api: ApiApp, clean: None) -> None:
    blocks = readme_blocks()
    watch = _terminal(blocks, 1)
    unwatched = blocks[:watch] + blocks[watch + 1 :]
    result = await run(
        ["bash", "-c", _script(unwatched, api.port, show_env=True)],
        environ=_recipe_env(),
        time_limit=100,
    )
    assert result.returncode == 0, result
    assert result.stdout.count("::block ") == len(unwatched), result
    out = result.stdout
    shown = dict(line.split("=", 1) for line in out.split("::env::\n", 1)[1].splitlines())
    assert UUID_RE.match(shown["LIVESTREAM_ID"]), result

    # Reflection and health.
    for service in ("favorited.v1.LivestreamService", "favorited.v1.ParticipantService"):
        assert re.search(rf"^{re.escape(service)}$", out, re.M), result
    assert "rpc CreateLivestream ( .favorited.v1.CreateLivestreamRequest )" in out, result
    assert "message JoinLivestreamRequest {" in out, result
    assert out.count('"status": "SERVING"') == 2, result
    # Create, get, list, join, list participants, as alice; bob joins and leaves.
    assert f'"id": "{shown["LIVESTREAM_ID"]}"' in out, result
    assert '"room_name": "launch-party"' in out, result
    assert '"created_by": "alice"' in out, result
    assert '"role": "PARTICIPANT_ROLE_HOST"' in out, result
    assert '"user_id": "bob"' in out, result
    assert '"status": "PARTICIPANT_STATUS_LEFT"' in out, result
    # The error recipe: code, reason, and grpcurl's exit status 64 + NOT_FOUND (5).
    assert "Code: NotFound" in result.stderr, result
    assert '"reason":"LIVESTREAM_NOT_FOUND"' in result.stderr, result
    assert "grpcurl exited 69" in out, result
    # End.
    assert '"status": "LIVESTREAM_STATUS_ENDED"' in out, result


async def _read_until(stream: asyncio.StreamReader, needle: str, seen: list[str]) -> None:
    while not any(needle in line for line in seen):
        line = await stream.readline()
        if not line:
            raise AssertionError(f"stream ended before {needle!r}:\n{''.join(seen)}")
        seen.append(line.decode())


@pytest.mark.timeout(120)
async def test_watch_recipe_runs_as_printed(
    api: ApiApp, clean: None, channel: grpc.aio.Channel, auth: Callable[..., Metadata]
) -> None:
    await skip_unless_watch_participants(channel, auth("alice"))
    blocks = readme_blocks()
    t1, t2 = _terminal(blocks, 1), _terminal(blocks, 2)
    setup = await run(
        ["bash", "-c", _script(blocks[:t1], api.port, show_env=True)], environ=_recipe_env()
    )
    assert setup.returncode == 0, setup
    shown = dict(line.split("=", 1) for line in setup.stdout.split("::env::\n", 1)[1].splitlines())
    session = {**_recipe_env(), **shown}

    terminal1 = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        _script([blocks[t1]], api.port),
        env=session,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert terminal1.stdout is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(60):
            # Subscribed and caught up once the snapshot's last message arrived.
            await _read_until(terminal1.stdout, '"complete": true', seen)
            terminal2 = await run(["bash", "-c", _script([blocks[t2]], api.port)], environ=session)
            assert terminal2.returncode == 0, terminal2
            await _read_until(terminal1.stdout, "PARTICIPANT_EVENT_TYPE_LEFT", seen)
            rest = await run(["bash", "-c", _script(blocks[t2 + 1 :], api.port)], environ=session)
            assert rest.returncode == 0, rest
            tail, err = await terminal1.communicate()
    finally:
        if terminal1.returncode is None:
            terminal1.kill()
            await terminal1.wait()
    transcript = "".join(seen) + tail.decode()
    assert terminal1.returncode == 0, f"{transcript}\n{err.decode()}"
    assert transcript.index('"snapshot"') < transcript.index('"change"'), transcript
    assert '"user_id": "alice"' in transcript.split('"change"')[0], transcript
    joined = transcript.index("PARTICIPANT_EVENT_TYPE_JOINED")
    assert joined < transcript.index("PARTICIPANT_EVENT_TYPE_LEFT"), transcript
    assert '"user_id": "bob"' in transcript[joined:], transcript
