"""The out-of-domain sets: fixed splits by text, re-anchored spans, target rows, joined pairs, entity swap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.augment import Company, EntitySwapper, joined_pairs, single_company_rows
from models.contract import SENTIMENT_LABELS
from models.corpus import build_corpus, dev_score, score_set
from models.data import IGNORE, Example
from models.domains import around, load_domains, reanchor, split_of
from tests.fixtures.tiny_data import write_data_dir, write_domain_sets

NEG, NEU, POS = range(3)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_domain_sets(write_data_dir(tmp_path_factory.mktemp("domains")))


def test_split_is_a_fixed_function_of_the_normalised_text() -> None:
    texts = [f"Headline number {i} about markets" for i in range(2000)]
    parts = [split_of(t, "sentfin") for t in texts]
    assert parts == [split_of(t, "sentfin") for t in reversed(texts)][::-1], "order does not matter"
    assert split_of("Apple beats  https://t.co/x", "s") == split_of("apple BEATS", "s"), "case, links, spaces"
    share = {p: parts.count(p) / len(parts) for p in ("train", "dev", "test")}
    assert share["test"] == pytest.approx(0.20, abs=0.03) and share["dev"] == pytest.approx(0.10, abs=0.03)


def test_shifted_spans_are_reanchored_and_lost_ones_counted() -> None:
    content = "Shares of Acme Corp rose while Beta fell."
    assert reanchor(content, "Acme Corp", 10) == 10
    assert reanchor(content, "Acme Corp", 13) == 10, "a span shifted by three characters is found again"
    assert reanchor(content, "Gamma", 10) == -1


def test_long_paragraphs_are_cut_around_the_entity() -> None:
    text = "word " * 200 + "Acme Corp rallies on results. " + "tail " * 200
    cut = around(text, "Acme Corp", width=120)
    assert "Acme Corp" in cut and len(cut) <= 120
    assert around("short text", "x") == "short text"


def test_domains_give_message_rows_target_rows_and_no_test_text_trains(data: Path) -> None:
    sets = load_domains(data)
    assert sets.unanchored == 0, "every shifted span of the tiny set is re-anchored"
    for name in ("sentfin", "finentity"):
        parts = sets.annotated[name]
        texts = {p: {a.text for a in parts[p]} for p in parts}
        assert not texts["train"] & texts["test"] and not texts["dev"] & texts["test"]
    mixed = [a for p in sets.annotated["sentfin"].values() for a in p if a.mixed()]
    assert mixed and all(a.message_label() == IGNORE for a in mixed)
    messages = [r for p in ("train", "dev", "test") for r in sets.messages["sentfin"][p]]
    assert all(r.sentiment != IGNORE for r in messages), "headlines whose entities disagree have no message label"
    posts = sets.messages["stockemotions"]["train"]
    assert posts and all(r.binary and r.sentiment in (NEG, POS) for r in posts)
    targets = sets.target_rows("train")
    assert targets and all(r.target and r.target.lower() in r.text.lower() for r in targets)


def test_corpus_names_every_set_and_keeps_test_texts_out_of_training(data: Path) -> None:
    corpus = build_corpus(data, joins=50)
    train_texts = {r.text for r in corpus.train if r.target is None}
    for name in ("tfns", "sentfin", "stockemotions"):
        assert not train_texts & {r.text for r in corpus.test[name]}, name
    assert {"tfns", "tfnt", "sentfin", "finentity", "stockemotions", "targets"} <= set(corpus.dev)
    assert {"targets_mixed", "joined", "tfns_dedup"} <= set(corpus.test)
    assert corpus.meta["train_by_domain"]["joined_target"] > 0


def test_entity_swap_replaces_companies_and_keeps_the_label() -> None:
    swapper = EntitySwapper([Company("AAPL", "Apple"), Company("MSFT", "Microsoft"), Company("XOM", "Exxon")], 1)
    row = Example("$AAPL up 5% as Apple beats estimates", sentiment=POS)
    swapped = swapper.swap(row)
    assert swapped is not None and swapped.sentiment == POS
    assert "AAPL" not in swapped.text and "Apple" not in swapped.text
    target = swapper.swap(Example("Microsoft slides, Exxon gains", sentiment=NEG, target="Microsoft"))
    assert target is not None and target.target and target.target in target.text
    assert swapper.swap(Example("gold falls", sentiment=NEG, target="gold")) is None, "markets are not companies"
    assert swapper.swap(Example("no company here", sentiment=NEU)) is None


def test_joined_pairs_read_each_company_with_its_own_label() -> None:
    singles = single_company_rows(
        [
            Example(f"$T{chr(65 + c)} {w} today", sentiment=s)
            for c, (w, s) in enumerate([("soars", POS), ("plunges", NEG)] * 10)
        ]
    )
    assert len(singles) == 20 and all(r.target and r.target.startswith("$") for r in singles)
    pairs = joined_pairs(singles, 30, seed=3, opposite_share=1.0)
    assert pairs and len(pairs) % 2 == 0
    for a, b in zip(pairs[::2], pairs[1::2], strict=True):
        assert a.text == b.text and a.target != b.target and a.sentiment != b.sentiment
        assert a.target and b.target and a.target in a.text and b.target in b.text


def test_forum_posts_are_scored_positive_vs_negative_ignoring_neutral() -> None:
    rows = [Example("up", sentiment=POS, binary=True), Example("down", sentiment=NEG, binary=True)]
    # neutral is the largest output for both: a binary set ignores it
    probs = np.array([[0.1, 0.6, 0.3], [0.3, 0.6, 0.1]])
    result = score_set(rows, probs, np.zeros((2, 20)))
    assert result["sentiment_accuracy"] == 1.0
    three_way = score_set([Example(r.text, sentiment=r.sentiment) for r in rows], probs, np.zeros((2, 20)))
    assert three_way["sentiment_accuracy"] == 0.0
    assert dev_score({"tfns": {"sentiment_macro_f1": 0.5}, "stockemotions": result}) == pytest.approx(0.75)
    assert SENTIMENT_LABELS[NEU] == "neutral"
