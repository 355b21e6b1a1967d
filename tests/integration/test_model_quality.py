"""Quality gate on the shipped artifact: test-set accuracy, card checksums, int8 vs fp32 record."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.benchmark import describe_cpu
from models.card import SHIPPED_MODEL_DIR, sha256_of, verify_card
from models.data import DataError, load_test_sets
from models.evaluate import evaluate_model
from models.inference import OnnxModel
from tests.conftest import missing

pytestmark = [pytest.mark.integration, pytest.mark.quality]


@pytest.fixture(scope="module")
def results() -> dict:  # type: ignore[type-arg]
    try:
        splits = load_test_sets(os.environ.get("FINSENT_DATA_DIR"))
    except DataError as exc:
        missing("the training data", str(exc))
        raise
    return evaluate_model(OnnxModel(SHIPPED_MODEL_DIR), splits)


def test_card_checksums_match_the_files() -> None:
    card = verify_card(SHIPPED_MODEL_DIR)
    for name, digest in card.files.items():
        assert sha256_of(SHIPPED_MODEL_DIR / name) == digest
    assert card.precision == "int8" and card.training.get("config"), "the card records how it was made"


def test_artifact_is_small() -> None:
    total = sum(p.stat().st_size for p in Path(SHIPPED_MODEL_DIR).iterdir() if p.is_file())
    assert total < 30 * 1024 * 1024, f"artifact folder is {total / 2**20:.1f} MiB"


def test_sentiment_accuracy_gate(results: dict) -> None:  # type: ignore[type-arg]
    assert results["sentiment"]["test"]["n"] == 2388
    assert results["sentiment"]["test"]["accuracy"] >= 0.86


def test_topic_accuracy_gate(results: dict) -> None:  # type: ignore[type-arg]
    assert results["topic"]["test"]["n"] == 4117
    assert results["topic"]["test"]["accuracy"] >= 0.88


def test_dedup_overlap_is_reported(results: dict) -> None:  # type: ignore[type-arg]
    assert results["topic"]["overlap_distinct_texts"] == 579  # as the data set's README counts them
    assert results["topic"]["overlap_with_train"] >= 579
    assert results["topic"]["test_dedup"]["n"] == 4117 - results["topic"]["overlap_with_train"]


# int8 kernels differ between instruction sets (AVX-512 VNNI on one CPU, AVX2 on another), so the
# same artifact can score slightly differently on different machines: v1's card (Intel Xeon) says
# 0.8756 sentiment accuracy, an AMD EPYC measures 0.8827 (+0.0071, 17 of 2,388 texts). The card is
# a record of one machine; a fresh evaluation elsewhere must agree with it to within twice that
# measured spread. On the CPU the card names, static int8 scales make the result reproducible, so
# there it must agree exactly (up to float summation order in the metrics).
CROSS_CPU_TOLERANCE = 0.015
SAME_CPU_TOLERANCE = 1e-9


def test_card_records_the_cpu_it_was_evaluated_on() -> None:
    card = verify_card(SHIPPED_MODEL_DIR)
    assert card.metrics.get("evaluated_on"), "finsent evaluate --update-card records the CPU"


def test_card_metrics_agree_with_a_fresh_evaluation(results: dict) -> None:  # type: ignore[type-arg]
    card = verify_card(SHIPPED_MODEL_DIR)
    same_cpu = card.metrics.get("evaluated_on") == describe_cpu()
    tolerance = SAME_CPU_TOLERANCE if same_cpu else CROSS_CPU_TOLERANCE
    for task in ("sentiment", "topic"):
        for variant in ("test", "test_dedup"):
            assert card.metrics[task][variant]["accuracy"] == pytest.approx(
                results[task][variant]["accuracy"], abs=tolerance
            ), f"{task} {variant} on {describe_cpu()} vs the card's {card.metrics.get('evaluated_on')}"


def test_card_records_every_other_kind_of_text_and_a_fresh_evaluation_agrees() -> None:
    """Headlines, paragraphs, forum posts and the per-company sets are on the card, as this CPU measures them."""
    from models.evaluate import DOMAIN_SETS, evaluate_domains

    card = verify_card(SHIPPED_MODEL_DIR)
    fresh = evaluate_domains(OnnxModel(SHIPPED_MODEL_DIR), os.environ.get("FINSENT_DATA_DIR"))
    if not fresh:
        missing("the out-of-domain data sets", "the data directory holds no sentfin-v1.1/finentity/stockemotions")
    assert set(card.metrics["domains"]) == set(DOMAIN_SETS) == set(fresh)
    same_cpu = card.metrics.get("evaluated_on") == describe_cpu()
    for name in DOMAIN_SETS:
        recorded = card.metrics["domains"][name]
        assert recorded["n"] == fresh[name]["n"], f"{name}: the test part changed size"
        # elsewhere, the tweet sets' measured spread (0.7% of texts) is a handful of texts on a small set
        # (FinEntity: 157): allow whichever is larger, twice the spread or four texts
        tolerance = SAME_CPU_TOLERANCE if same_cpu else max(CROSS_CPU_TOLERANCE, 4 / recorded["n"])
        assert recorded["sentiment_accuracy"] == pytest.approx(fresh[name]["sentiment_accuracy"], abs=tolerance), name
    assert card.targets and fresh["joined"]["read_as"] == "target pair", "company targets are read as pairs"
