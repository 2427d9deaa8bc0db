"""clients/python installs on its own into a fresh virtualenv (no server code) and calls a running
favorited with the sync and asyncio helpers."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.clients._support import REPO, env, run

if TYPE_CHECKING:
    from collections.abc import Callable

    from favorited.app import ApiApp
    from tests.conftest import Metadata

# Runs inside the fresh virtualenv, with `python -I` (no PYTHONPATH, no cwd, no user site).
SCRIPT = r"""
import asyncio, importlib.resources, importlib.util, json, sys, uuid

import grpc
from favorited_api.client import (
    FavoritedError, create_aio_channel, create_channel, raise_favorited_errors,
)
from favorited_api.v1 import livestream_pb2
from favorited_api.v1 import livestream_service_pb2 as ls
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc

target, token, room = sys.argv[1:4]
out = {
    "server_importable": importlib.util.find_spec("favorited") is not None,
    "package_file": importlib.util.find_spec("favorited_api").origin,
    "typed": sorted(
        p.name
        for p in importlib.resources.files("favorited_api").rglob("*")
        if p.name == "py.typed" or p.name.endswith(".pyi")
    ),
}


def fail(call):
    try:
        with raise_favorited_errors():
            call()
    except FavoritedError as exc:
        return {
            "code": exc.code.name,
            "reason": exc.reason,
            "domain": exc.domain,
            "metadata": dict(exc.metadata),
            "fields": [v.field for v in exc.field_violations],
        }
    return None


with create_channel(target, token=token) as channel:
    stub = ls_grpc.LivestreamServiceStub(channel)
    missing = str(uuid.uuid4())
    out["not_found"] = fail(
        lambda: stub.GetLivestream(ls.GetLivestreamRequest(livestream_id=missing), timeout=10)
    )
    out["missing"] = missing
    created = stub.CreateLivestream(
        ls.CreateLivestreamRequest(
            livestream=livestream_pb2.Livestream(room_name=room, title="fresh venv")
        ),
        timeout=10,
    ).livestream
    status = livestream_pb2.LivestreamStatus.Name(created.status)
    out["created"] = {"id": created.id, "status": status}
    listed = stub.ListLivestreams(ls.ListLivestreamsRequest(page_size=100), timeout=10)
    out["listed"] = [s.id for s in listed.livestreams]
    out["invalid"] = fail(
        lambda: stub.CreateLivestream(
            ls.CreateLivestreamRequest(livestream=livestream_pb2.Livestream(room_name=room)),
            timeout=10,
        )
    )


async def aio():
    async with create_aio_channel(target, token=token) as channel:
        reply = await ls_grpc.LivestreamServiceStub(channel).GetLivestream(
            ls.GetLivestreamRequest(livestream_id=created.id), timeout=10
        )
        return reply.livestream.title


out["aio_title"] = asyncio.run(aio())
print(json.dumps(out))
"""


def _uv() -> list[str]:
    """uv as a command, else as a module of the base Python (scripts/bootstrap.sh allows both)."""
    if found := shutil.which("uv"):
        return [found]
    return [str(Path(sys.base_prefix) / "bin" / "python3"), "-m", "uv"]


@pytest.mark.timeout(180)
async def test_fresh_virtualenv_installs_the_client_alone_and_calls_the_server(
    api: ApiApp, auth: Callable[..., Metadata], room_name: str, tmp_path: Path
) -> None:
    uv = _uv()
    venv = tmp_path / "venv"
    # uv would otherwise pick up the project's own environment and workspace.
    clean_env = {k: v for k, v in env().items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    made = await run(
        [*uv, "venv", "--quiet", "--no-project", "--python", sys.executable, str(venv)],
        cwd=tmp_path,
        environ=clean_env,
    )
    assert made.returncode == 0, made
    python = venv / "bin" / "python"
    installed = await run(
        [*uv, "pip", "install", "--quiet", "--python", str(python), str(REPO / "clients/python")],
        cwd=tmp_path,
        environ=clean_env,
        time_limit=150,
    )
    assert installed.returncode == 0, installed

    token = str(auth("alice")[0][1]).removeprefix("Bearer ")
    called = await run(
        [str(python), "-I", "-c", SCRIPT, f"127.0.0.1:{api.port}", token, room_name],
        cwd=tmp_path,
        environ=clean_env,
    )
    assert called.returncode == 0, called
    out = json.loads(called.stdout)

    assert out["server_importable"] is False
    assert out["package_file"].startswith(str(venv)), out["package_file"]
    assert "py.typed" in out["typed"]
    assert "livestream_service_pb2_grpc.pyi" in out["typed"]
    assert out["not_found"] == {
        "code": "NOT_FOUND",
        "reason": "LIVESTREAM_NOT_FOUND",
        "domain": "favorited.v1",
        "metadata": {"livestream": out["missing"]},
        "fields": [],
    }
    assert out["created"]["status"] == "LIVESTREAM_STATUS_LIVE"
    assert out["created"]["id"] in out["listed"]
    assert out["invalid"]["code"] == "INVALID_ARGUMENT"
    assert out["invalid"]["fields"] == ["livestream.title"]
    assert out["aio_title"] == "fresh venv"
