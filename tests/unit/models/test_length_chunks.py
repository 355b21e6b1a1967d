"""Batches of similar length: every index once, shortest first, bounded size and padding."""

from __future__ import annotations

import random

from models.inference import LENGTH_SLACK, LENGTH_SLACK_TOKENS, length_chunks


def test_every_text_once_in_bounded_runs_of_similar_length() -> None:
    rng = random.Random(7)
    for _ in range(200):
        lengths = [rng.randint(3, 64) for _ in range(rng.randint(0, 300))]
        size = rng.choice([1, 4, 32, 256])
        runs = length_chunks(lengths, size)
        flat = [i for run in runs for i in run]
        assert sorted(flat) == list(range(len(lengths)))
        assert [lengths[i] for i in flat] == sorted(lengths), "shortest first"
        for run in runs:
            assert 1 <= len(run) <= size
            longest, shortest = lengths[run[-1]], lengths[run[0]]
            assert longest <= shortest * (1 + LENGTH_SLACK) + LENGTH_SLACK_TOKENS


def test_equal_lengths_fill_whole_batches() -> None:
    assert [len(r) for r in length_chunks([10] * 70, 32)] == [32, 32, 6]


def test_a_long_text_gets_its_own_run_instead_of_padding_the_short_ones() -> None:
    assert length_chunks([8, 9, 60, 8], 32) == [[0, 3, 1], [2]]
