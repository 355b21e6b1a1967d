"""The feedback loop end to end, on tiny data: corrections -> export -> retrain -> export -> hot swap -> dashboard.

Real components throughout: the embedded broker, a daemon in this process scoring from a model folder,
a SQLite store, the dashboard's own write and page, the ``finsent`` commands. ``feedback-export`` runs as a
subprocess; ``train``, ``export`` and ``evaluate`` run through the same ``finsent`` command line in this
process (``CliRunner``), which saves the ~5 s torch import each of six subprocesses would cost.

The figures are certain without a tuned tolerance: the first model and the regressed one are trained for
one optimisation step (chance level: sentiment macro-F1 about 0.17), the retrained one for a few epochs on
tiny data whose sentiment words separate the classes (macro-F1 near 1.0). The retrained model beats the
first on both tasks and the regressed one falls far below it, so the default gate (0.01) decides both.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

torch = pytest.importorskip("torch", reason="training extras (torch) are not installed")

from typer.testing import CliRunner  # noqa: E402

from dashboard.feedback import add_correction  # noqa: E402
from pipeline import tables as t  # noqa: E402
from pipeline.cli import app as finsent  # noqa: E402
from pipeline.tooling.broker import EmbeddedBroker  # noqa: E402
from tests.fixtures.tiny_data import write_data_dir, write_tiny_bert  # noqa: E402
from tests.helpers import ROOT, as_json, count, produce, read_topic, wait_until  # noqa: E402
from tests.integration.daemon_harness import daemon_settings, running_daemon  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

BASE_MS = 1_767_261_600_000
FILES = ("model.int8.onnx", "tokenizer.json")


def run_finsent(*args: str) -> str:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        result = CliRunner().invoke(finsent, list(args))
    finally:  # the command configures the root logger for its run: give the test's capture back
        root.handlers[:], _ = handlers, root.setLevel(level)
    assert result.exit_code == 0, f"finsent {' '.join(args)}: {result.output}{result.exception!r}"
    return result.output


def make_artifact(data: Path, base: Path, work: Path, version: str, *train_args: str) -> Path:
    """``finsent train`` -> ``finsent export`` -> ``finsent evaluate --update-card``: an artifact with test figures."""
    run = work / f"run-{version}"
    common = ["--data-dir", str(data), "--base-model", str(base), "--batch-size", "16", "--max-length", "32"]
    run_finsent("train", "-o", str(run), *common, "--eval-every", "15", "--patience", "50", *train_args)
    artifact = work / version
    run_finsent("export", str(run / "best"), "-o", str(artifact), "--version", version, "--data-dir", str(data))
    run_finsent("evaluate", "--model", str(artifact), "--data-dir", str(data), "--update-card", "--no-report")
    return artifact


def publish(artifact: Path, live: Path) -> None:
    """Replace the serving folder's contents the way a deploy should: each file atomically, the card last."""
    for name in (*FILES, "card.json"):
        shutil.copy(artifact / name, live / f".{name}.tmp")
        os.replace(live / f".{name}.tmp", live / name)


def macro_f1(artifact: Path) -> dict[str, float]:
    metrics = json.loads((artifact / "card.json").read_text())["metrics"]
    return {task: metrics[task]["test_dedup"]["macro_f1"] for task in ("sentiment", "topic")}


def versions(store: Any) -> dict[tuple[str, str], str | None]:
    m = t.model_versions.c
    with store.engine.connect() as conn:
        return {(r.version, r.outcome): r.reason for r in conn.execute(select(m.version, m.outcome, m.reason))}


def reloads(daemon: Any, outcome: str) -> float:
    return daemon.metrics.registry.get_sample_value("finsent_model_reloads_total", {"outcome": outcome}) or 0.0


def news(prefix: str, texts: list[str]) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-{i}", "text": text, "published_at": BASE_MS + i} for i, text in enumerate(texts)]


def test_corrections_retrain_swap_and_refusal(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    data = write_data_dir(tmp_path / "data")
    with (data / "twitter-financial-news-sentiment" / "sent_valid.csv").open(newline="") as fh:
        test_text = list(csv.DictReader(fh))[5]["text"]  # an analyst corrects a message that is also a test text
    from transformers import AutoConfig, AutoModel

    from models.data import load_splits

    base = write_tiny_bert(tmp_path / "base", [r.text for r in load_splits(data).training_rows()])
    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.from_pretrained(base)).save_pretrained(base)  # random weights to start from
    first = make_artifact(data, base, tmp_path, "tiny-1", "--max-steps", "1", "--seed", "1")
    live = tmp_path / "live"
    live.mkdir()
    publish(first, live)

    settings = daemon_settings(broker.bootstrap, unique, tmp_path, live, reload_check_s=0.2)
    assert settings.model_gate_max_drop == 0.01, "the default gate decides"
    url = settings.store_url.get_secret_value()
    topic = settings.input_topics[0]
    texts = ["Exxon slump warns cuts #900001", "Intel record rally #900002", "Boeing files holds #900003", test_text]
    produce(broker.bootstrap, topic, as_json(news("a", texts)))
    caplog.set_level(logging.INFO, logger="pipeline.upkeep")
    with running_daemon(settings) as daemon:
        wait_until(lambda: count(daemon.store, "messages") == 4, 60, "the first messages scored by tiny-1", 0.2)
        wait_until(lambda: ("tiny-1", "loaded") in versions(daemon.store), 10, "the start-up model recorded")

        # 1. analysts correct labels through the dashboard's own write; the last word on a-0 wins
        add_correction(url, "a-0", sentiment="positive", topic=None, analyst="dana")
        add_correction(url, "a-0", sentiment="negative", topic="Energy | Oil", analyst="dana")
        add_correction(url, "a-1", sentiment="positive", topic=None, analyst="lee")
        add_correction(url, "a-2", sentiment="neutral", topic=None, analyst="lee")
        add_correction(url, "a-3", sentiment="negative", topic=None, analyst="lee")

        # 2. the ML engineer exports them with the real command
        feedback_csv = tmp_path / "feedback.csv"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FINSENT_")}
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", "feedback-export", "--store", url, "-o", str(feedback_csv)],
            capture_output=True, text=True, timeout=60, cwd=ROOT, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "wrote 4 correction(s)" in done.stdout

        # 3. retrains on them (the test text is dropped), exports, evaluates
        second = make_artifact(
            data, base, tmp_path, "tiny-2", "--extra-data", str(feedback_csv), "--epochs", "5",
            "--lr", "3e-3", "--head-lr", "3e-3", "--seed", "1",
        )  # fmt: skip
        card = json.loads((second / "card.json").read_text())
        assert card["training"]["extra_data"] == {
            "files": ["feedback.csv"], "read": 4, "kept": 3, "dropped_in_test_sets": 1
        }  # fmt: skip
        old, new = macro_f1(first), macro_f1(second)
        assert new["sentiment"] > old["sentiment"] + 0.3 and new["topic"] > old["topic"], (old, new)

        # 4. publishes it: the daemon swaps without a restart, and what it reads next is scored by tiny-2
        publish(second, live)
        wait_until(lambda: daemon.scorer.version == "tiny-2", 30, "tiny-2 to be swapped in")
        assert reloads(daemon, "loaded") == 1 and reloads(daemon, "refused") == 0
        produce(broker.bootstrap, topic, as_json(news("b", ["Apple beats soars #900010", "Tesla cuts loss #900011"])))
        wait_until(lambda: count(daemon.store, "messages") == 6, 30, "messages read after the swap")

        # 5. a regressed model (a run cut short after one step) is refused; tiny-2 keeps serving
        third = make_artifact(data, base, tmp_path, "tiny-3", "--max-steps", "1", "--seed", "3")
        assert macro_f1(third)["sentiment"] < new["sentiment"] - 0.3
        publish(third, live)
        wait_until(lambda: reloads(daemon, "refused") == 1, 30, "tiny-3 to be refused")
        produce(broker.bootstrap, topic, as_json(news("c", ["Pfizer schedules updates #900020"])))
        wait_until(lambda: count(daemon.store, "messages") == 7, 30, "a message read after the refusal")
        assert daemon.scorer.version == "tiny-2"
        recorded = wait_until(
            lambda: ("tiny-3", "refused") in versions(daemon.store) and versions(daemon.store),
            10,
            "the refusal recorded",
        )

    assert set(recorded) == {("tiny-1", "loaded"), ("tiny-2", "loaded"), ("tiny-3", "refused")}
    reason = recorded[("tiny-3", "refused")] or ""
    assert reason.startswith("model tiny-3 fails the quality gate: its sentiment test_dedup macro-F1"), reason
    assert (recorded[("tiny-2", "loaded")] or "").startswith("accepted against tiny-1")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and r.name == "pipeline.upkeep"]
    assert errors == [f"model tiny-3 refused, still serving tiny-2: {reason}"], "one readable sentence"

    scored = {
        json.loads(r.value)["id"]: json.loads(r.value)["model_version"]
        for r in read_topic(broker.bootstrap, settings.scored_topic, 7, timeout_s=30, settle_s=0.5)
    }
    assert scored == {"a-0": "tiny-1", "a-1": "tiny-1", "a-2": "tiny-1", "a-3": "tiny-1", "b-0": "tiny-2",
                      "b-1": "tiny-2", "c-0": "tiny-2"}  # fmt: skip

    # 6. the dashboard's Model page shows both served versions with their figures, and the refused one
    from streamlit.testing.v1 import AppTest

    from pipeline.tooling.dashboard_server import APP

    monkeypatch.setenv("FINSENT_STORE_URL", url)
    monkeypatch.setenv("FINSENT_MODEL_DIR", str(live))
    page = AppTest.from_file(str(APP), default_timeout=30)
    page.query_params["view"] = "Model"
    page.run()
    assert not page.exception, page.exception
    frames = [d.value for d in page.dataframe]
    served = next(f for f in frames if "daemons" in f.columns).set_index("version")
    assert list(served.index) == ["tiny-2", "tiny-1"]
    for version, artifact in (("tiny-1", first), ("tiny-2", second)):
        test = json.loads((artifact / "card.json").read_text())["metrics"]
        assert served.loc[version, "sentiment macro-F1"] == pytest.approx(test["sentiment"]["test"]["macro_f1"])
        assert served.loc[version, "topic accuracy"] == pytest.approx(test["topic"]["test"]["accuracy"])
    refused = next(f for f in frames if "reason" in f.columns and "daemons" not in f.columns)
    assert refused[["version", "reason"]].values.tolist() == [["tiny-3", reason]]
    assert any("tiny-3" in w.value and "refused" in w.value for w in page.warning), "the folder's card is not served"
