"""``python -m favorited.livekit_emulator``."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
