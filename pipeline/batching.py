"""The flush rules of the consume loop, as readable predicates."""

from __future__ import annotations


def batch_due(size: int, first_added_ms: int | None, now_ms: int, *, max_size: int, max_wait_ms: int) -> bool:
    """Score the batch when it is full OR its oldest text has waited ``max_wait_ms``."""
    if size == 0 or first_added_ms is None:
        return False
    return size >= max_size or now_ms - first_added_ms >= max_wait_ms


def checkpoint_due(pending: int, last_commit_ms: int, now_ms: int, *, interval_ms: int, windows_due: bool) -> bool:
    """Commit when there is work AND the interval elapsed, or at once when a window must close."""
    if windows_due:
        return True
    return pending > 0 and now_ms - last_commit_ms >= interval_ms
