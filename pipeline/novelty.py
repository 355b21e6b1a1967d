"""Repeat detection: a story seen recently (same normalised text) counts once as unique.

Memory is bounded: at most ``max_stories`` hashes are remembered, least recently seen
first out. A story evicted by a flood of distinct texts is counted unique again when it
comes back — an over-count of ``n_unique``, never a lost message.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from models.contract import dedup_key

DEFAULT_MAX_STORIES = 200_000  # about 30 MB of hashes


def story_hash(text: str) -> str:
    """Stable hash of a story's normalised text (case, links and spacing ignored)."""
    return hashlib.sha1(dedup_key(text).encode("utf-8"), usedforsecurity=False).hexdigest()


class NoveltyFilter:
    """Remembers when each story was first seen (event time) over a horizon, for at most ``max_stories``.

    ``pending`` holds the hashes first seen since the last checkpoint; the store keeps
    them in the same transaction as the windows, so a restart judges repeats the same way.
    """

    def __init__(
        self, horizon_ms: int, known: dict[str, int] | None = None, max_stories: int = DEFAULT_MAX_STORIES
    ) -> None:
        self.horizon_ms = horizon_ms
        self.max_stories = max_stories
        self.first_seen: OrderedDict[str, int] = OrderedDict()
        for key, seen in (known or {}).items():
            self._remember(key, seen)
        self.pending: dict[str, int] = {}
        self.last_hash = ""

    def _remember(self, key: str, seen: int) -> None:
        self.first_seen[key] = seen
        self.first_seen.move_to_end(key)
        while len(self.first_seen) > self.max_stories:
            self.first_seen.popitem(last=False)

    def is_repeat(self, text: str, event_time_ms: int) -> bool:
        if self.horizon_ms <= 0:
            return False
        key = self.last_hash = story_hash(text)
        seen = self.first_seen.get(key)
        if seen is not None and abs(event_time_ms - seen) <= self.horizon_ms:
            self.first_seen.move_to_end(key)
            return True
        self._remember(key, event_time_ms)
        self.pending[key] = event_time_ms
        return False

    def take_pending(self) -> dict[str, int]:
        taken, self.pending = self.pending, {}
        return taken

    def forget(self, key: str) -> None:
        """Forget one story first seen since the last checkpoint (its record was dead-lettered)."""
        if self.pending.pop(key, None) is not None:
            self.first_seen.pop(key, None)

    def forget_before(self, event_time_ms: int) -> None:
        for key in [k for k, v in self.first_seen.items() if v < event_time_ms]:
            del self.first_seen[key]

    def discard_pending(self) -> None:
        """Forget stories first seen since the last checkpoint (their records will be read again)."""
        for key in self.pending:
            self.first_seen.pop(key, None)
        self.pending = {}
