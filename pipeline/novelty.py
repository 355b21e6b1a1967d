"""Repeat detection: a story seen recently (same normalised text) counts once as unique."""

from __future__ import annotations

import hashlib

from models.contract import dedup_key


def story_hash(text: str) -> str:
    """Stable hash of a story's normalised text (case, links and spacing ignored)."""
    return hashlib.sha1(dedup_key(text).encode("utf-8")).hexdigest()


class NoveltyFilter:
    """Remembers when each story was first seen (event time) over a horizon.

    ``pending`` holds the hashes first seen since the last checkpoint; the store keeps
    them in the same transaction as the windows, so a restart judges repeats the same way.
    """

    def __init__(self, horizon_ms: int, known: dict[str, int] | None = None) -> None:
        self.horizon_ms = horizon_ms
        self.first_seen: dict[str, int] = dict(known or {})
        self.pending: dict[str, int] = {}
        self.last_hash = ""

    def is_repeat(self, text: str, event_time_ms: int) -> bool:
        if self.horizon_ms <= 0:
            return False
        key = self.last_hash = story_hash(text)
        seen = self.first_seen.get(key)
        if seen is not None and abs(event_time_ms - seen) <= self.horizon_ms:
            return True
        self.first_seen[key] = event_time_ms
        self.pending[key] = event_time_ms
        return False

    def take_pending(self) -> dict[str, int]:
        taken, self.pending = self.pending, {}
        return taken

    def forget_before(self, event_time_ms: int) -> None:
        self.first_seen = {k: v for k, v in self.first_seen.items() if v >= event_time_ms}

    def discard_pending(self) -> None:
        """Forget stories first seen since the last checkpoint (their records will be read again)."""
        for key in self.pending:
            self.first_seen.pop(key, None)
        self.pending = {}
