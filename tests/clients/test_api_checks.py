"""The checks behind scripts/check-api: buf breaking against the committed baseline (tested on
modified copies of the protos), generated-code drift detection, and the script itself."""

from __future__ import annotations

import shutil
import sys
from typing import TYPE_CHECKING

import pytest

from tests.clients._support import REPO, run
from tools import api_baseline, gen_protos

if TYPE_CHECKING:
    from pathlib import Path

LIVESTREAM_PROTO = "protos/favorited/v1/livestream.proto"


@pytest.fixture
def protos_copy(tmp_path: Path) -> Path:
    """A copy of the buf workspace (buf.yaml, protos/ and its baseline) to change freely."""
    shutil.copy2(REPO / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(REPO / "protos", tmp_path / "protos")
    return tmp_path


def _edit(root: Path, old: str, new: str) -> None:
    path = root / LIVESTREAM_PROTO
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not found once in {LIVESTREAM_PROTO}"
    path.write_text(text.replace(old, new))


def test_current_protos_do_not_break_the_baseline() -> None:
    result = api_baseline.check()
    assert result.returncode == 0, result.stdout + result.stderr


def test_changing_a_field_number_fails_the_breaking_check(protos_copy: Path) -> None:
    _edit(protos_copy, "string title = 3;", "string title = 30;")
    result = api_baseline.check(protos_copy)
    assert result.returncode == api_baseline.BUF_BREAKING_FOUND == 100, result.stderr
    assert 'field "3" with name "title" on message "Livestream" was deleted' in result.stdout
    assert "livestream.proto" in result.stdout


async def test_the_check_command_reports_it(protos_copy: Path) -> None:
    _edit(protos_copy, "string title = 3;", "string title = 30;")
    result = await run(
        [sys.executable, "tools/api_baseline.py", "check", "--input", str(protos_copy)]
    )
    assert result.returncode == 100, result
    assert '"title"' in result.stdout, result
    assert "breaking changes against the released API" in result.stderr, result


def test_adding_a_field_is_not_breaking(protos_copy: Path) -> None:
    _edit(
        protos_copy,
        "  string livekit_room_sid = 17;\n",
        "  string livekit_room_sid = 17;\n  // Added.\n  string added_note = 18;\n",
    )
    result = api_baseline.check(protos_copy)
    assert result.returncode == 0, result.stdout + result.stderr


def test_update_refuses_to_record_a_breaking_change(protos_copy: Path) -> None:
    baseline = protos_copy / "protos" / "baseline.json"
    before = baseline.read_text()
    _edit(protos_copy, "string title = 3;", "string title = 30;")
    assert api_baseline.update(protos_copy, baseline) == 1
    assert baseline.read_text() == before

    assert api_baseline.update(protos_copy, baseline, allow_breaking=True) == 0
    assert baseline.read_text() != before
    assert api_baseline.check(protos_copy, baseline).returncode == 0


@pytest.mark.parametrize("language", sorted(gen_protos.GENERATORS))
def test_committed_generated_code_matches_a_fresh_generation(language: str, tmp_path: Path) -> None:
    generator = gen_protos.GENERATORS[language]
    fresh = generator.run(tmp_path)
    assert fresh, "the generator produced nothing"
    assert gen_protos.drift(REPO, generator, fresh) == []


def test_drift_is_detected_and_regeneration_keeps_hand_written_files(tmp_path: Path) -> None:
    generator = gen_protos.GENERATORS["python"]
    work = tmp_path / "work"
    work.mkdir()
    fresh = generator.run(work)
    root = tmp_path / "repo"
    package = root / "clients" / "python" / "favorited_api"
    shutil.copytree(REPO / "clients" / "python" / "favorited_api", package)
    edited = "clients/python/favorited_api/v1/livestream_pb2.py"
    (root / edited).write_text((root / edited).read_text() + "# hand edit\n")
    (package / "v1" / "removed_pb2.py").write_text("# a module for a deleted proto\n")
    (package / "v1" / "participant_pb2.pyi").unlink()
    hand_written = (package / "client.py").read_bytes()

    problems = gen_protos.drift(root, generator, fresh)
    assert [p.splitlines()[0] for p in problems] == [
        "missing: clients/python/favorited_api/v1/participant_pb2.pyi",
        "not generated (stale): clients/python/favorited_api/v1/removed_pb2.py",
        f"differs: {edited}",
    ]
    assert "+# hand edit" not in problems[2] and "-# hand edit" in problems[2]

    changed = gen_protos.write(root, generator, fresh)
    assert len(changed) == 3
    assert gen_protos.drift(root, generator, fresh) == []
    assert (package / "client.py").read_bytes() == hand_written


@pytest.mark.timeout(120)
async def test_check_api_script_passes() -> None:
    result = await run(["scripts/check-api"], time_limit=100)
    assert result.returncode == 0, result
    for step in ("buf lint", "buf format", "generated clients", "no breaking change"):
        assert f"--- {step}" in result.stdout, result
    assert "check-api: all API checks passed" in result.stdout, result
