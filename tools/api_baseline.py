"""The released favorited.v1 API as a committed buf image, and the breaking check against it.

protos/baseline.json is a buf image (descriptors only, no comments or source positions),
pretty-printed so that a change to it reads as a reviewable diff: which messages, fields, numbers,
RPCs were released. It is committed, so the check needs no git history, branch name or network and
works the same in a fresh clone, a shallow clone and a tarball.

    python tools/api_baseline.py check            # buf breaking: protos/ against the baseline
    python tools/api_baseline.py check --input D  # the same for another tree (D holds buf.yaml)
    python tools/api_baseline.py update           # re-snapshot protos/ as the released API

`update` is the deliberate step that "releases" the current protos: run it (and commit the new
baseline in its own reviewed change) when a proto change has been merged to main and clients may
depend on it. It refuses to record an API that breaks the current baseline; `--allow-breaking`
overrides that, for the rare reviewed exception (a field that was never used by anyone). Once
favorited.v1 has callers, a breaking change goes into favorited.v2 instead.

Exit codes of `check`: 0 compatible; 100 breaking changes found (buf's own code); other: error.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "protos" / "baseline.json"
BUF_BREAKING_FOUND = 100


def _buf() -> str:
    # Run from `uv run`, the venv's buf (buf-bin) sits next to the interpreter.
    venv_buf = Path(sys.executable).parent / "buf"
    return str(venv_buf) if venv_buf.exists() else "buf"


def check(input_dir: Path = ROOT, baseline: Path = BASELINE) -> subprocess.CompletedProcess[str]:
    """buf breaking for the workspace at input_dir (its buf.yaml) against the baseline image."""
    if not baseline.is_file():
        raise SystemExit(f"api_baseline: {baseline} is missing; create it with `update`")
    return subprocess.run(
        [_buf(), "breaking", str(input_dir), "--against", str(baseline)],
        capture_output=True,
        text=True,
        check=False,
    )


def build_image(input_dir: Path = ROOT) -> str:
    """The pretty-printed JSON image of the workspace at input_dir."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "image.json"
        subprocess.run(
            [_buf(), "build", str(input_dir), "--exclude-source-info", "-o", str(out)], check=True
        )
        return json.dumps(json.loads(out.read_text()), indent=1) + "\n"


def update(
    input_dir: Path = ROOT, baseline: Path = BASELINE, *, allow_breaking: bool = False
) -> int:
    """Record the workspace at input_dir as the released API, unless that breaks the baseline."""
    if baseline.is_file():
        result = check(input_dir, baseline)
        if result.returncode not in (0, BUF_BREAKING_FOUND):
            sys.stderr.write(result.stdout + result.stderr)
            return result.returncode
        if result.returncode == BUF_BREAKING_FOUND and not allow_breaking:
            sys.stderr.write(result.stdout)
            print(
                f"api_baseline: not updating {baseline.name}: the protos break the released API "
                "(above). Pass --allow-breaking only for a reviewed exception.",
                file=sys.stderr,
            )
            return 1
    image = build_image(input_dir)
    if baseline.is_file() and baseline.read_text() == image:
        print(f"api_baseline: {baseline.name} already matches the protos")
        return 0
    baseline.write_text(image)
    print(f"api_baseline: wrote {baseline}; commit it in its own reviewed change")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check_cmd = sub.add_parser("check", help="fail (exit 100) on breaking changes")
    check_cmd.add_argument("--input", type=Path, default=ROOT, help="directory holding buf.yaml")
    update_cmd = sub.add_parser("update", help="record protos/ as the released API")
    update_cmd.add_argument(
        "--allow-breaking", action="store_true", help="record it even if it breaks the baseline"
    )
    args = parser.parse_args(argv)

    if args.command == "check":
        result = check(args.input)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if result.returncode == BUF_BREAKING_FOUND:
            print(
                "api_baseline: breaking changes against the released API (protos/baseline.json). "
                "Add fields and RPCs instead of changing them, reserve removed numbers and names, "
                "or put the change in a new package version.",
                file=sys.stderr,
            )
        elif result.returncode == 0:
            print("api_baseline: no breaking changes against protos/baseline.json")
        return result.returncode

    return update(allow_breaking=args.allow_breaking)


if __name__ == "__main__":
    raise SystemExit(main())
