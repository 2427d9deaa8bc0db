"""Why a watcher's stream has to stop."""

from __future__ import annotations


class Closing(Exception):
    """The server is shutting down: the stream must end so the client reconnects elsewhere."""


class Overflowed(Exception):
    """The watcher fell further behind than the feed keeps; it must resume from its sequence."""


class Broken(Exception):
    """The feed stopped on an unexpected error: the stream must end so the client resumes from its
    sequence (on a fresh feed)."""


class Finished(Exception):
    """The watched livestream ended and everything up to its end was delivered."""
