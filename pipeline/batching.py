"""The commit rule of the consume loop, as a readable predicate (batches: ``pipeline.scoring``)."""

from __future__ import annotations


def checkpoint_due(pending: int, last_commit_ms: int, now_ms: int, *, interval_ms: int, windows_due: bool) -> bool:
    """Commit when there is work AND the interval elapsed, or at once when a window must close."""
    if windows_due:
        return True
    return pending > 0 and now_ms - last_commit_ms >= interval_ms
