"""The v3 recipe end to end on tiny data: teacher over cached layers (resumable), distilled student,
export with company-target pairs, per-company scores through the serving scorer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training extras (torch) are not installed")

from models.corpus import build_corpus  # noqa: E402
from models.distill import StudentConfig, load_soft_labels, train_student  # noqa: E402
from models.export import export_checkpoint  # noqa: E402
from models.inference import OnnxModel  # noqa: E402
from models.teacher import LayerCache, TeacherConfig, TopStack, load_encoder, row_key, train_teacher  # noqa: E402
from models.teacher_eval import evaluate_teacher  # noqa: E402
from models.tokenization import encode, load_tokenizer, pad_batch  # noqa: E402
from pipeline.scorer import OnnxScorer  # noqa: E402
from tests.fixtures.tiny_data import write_data_dir, write_domain_sets, write_tiny_bert  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("v3")
    data = write_domain_sets(write_data_dir(root / "data"))
    corpus = build_corpus(data, joins=40)
    texts = [r.text for r in corpus.train] + [r.target or "" for r in corpus.train]
    base = write_tiny_bert(root / "base", texts)
    from transformers import AutoModel

    AutoModel.from_config(__import__("transformers").AutoConfig.from_pretrained(base)).save_pretrained(base)
    return {"root": root, "data": data, "base": base}


def test_top_layers_over_the_cache_equal_the_whole_encoder(tiny: dict[str, Path], tmp_path: Path) -> None:
    encoder = load_encoder(str(tiny["base"])).eval()
    tok = load_tokenizer(tiny["base"] / "tokenizer.json", 32)
    ids = encode(tok, ["Apple beats item", "Tesla misses badly today", "x"], ["Apple", None, None])
    input_ids, mask = pad_batch(ids)
    with torch.no_grad():
        full = encoder(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
    cache = LayerCache(tmp_path / "cache", [len(x) for x in ids], encoder.config.hidden_size, "k")
    cache.fill(encoder, ids, 0, 1, TeacherConfig(base_model=str(tiny["base"]), bf16=False))
    top = TopStack(encoder, 1, 0.0).eval()
    hidden, m = cache.batch([0, 1, 2], "cpu")
    additive = (1.0 - m[:, None, None, :].float()) * -1e4
    x = hidden
    with torch.no_grad():
        for layer in top.layers:
            out = layer(x, attention_mask=additive)
            x = out[0] if isinstance(out, tuple) else out
    real = torch.from_numpy(mask).bool()
    assert (x - full)[real].abs().max().item() < 5e-3  # the cache is fp16


def test_teacher_resumes_and_writes_soft_labels_for_every_row(tiny: dict[str, Path]) -> None:
    out = tiny["root"] / "teacher"
    cfg = TeacherConfig(base_model=str(tiny["base"]), data_dir=str(tiny["data"]), output_dir=str(out),
                        cache_layers=1, epochs=1, batch_size=16, eval_every=3, max_steps=3, joins=40,
                        lr=1e-3)  # fmt: skip
    first = train_teacher(cfg)
    assert first["steps"] == 3 and (out / "checkpoint.pt").is_file()
    cfg.max_steps = 6
    second = train_teacher(cfg)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert second["steps"] == 6 and [r["step"] for r in log] == [3, 6], "the second run went on from step 3"
    corpus = build_corpus(tiny["data"], joins=40)
    with np.load(out / "soft_labels.npz") as saved:
        keys = set(saved["keys"].tolist())
        assert saved["sentiment"].shape[1] == 3 and saved["topic"].shape[1] == 20
    assert {row_key(r) for r in corpus.train} <= keys, "both heads' soft labels for every training row"
    assert {"tfns", "stockemotions", "targets"} <= set(second["best"]["dev"])
    figures = evaluate_teacher(out / "best", str(tiny["data"]))
    assert {"tfns", "tfnt", "sentfin", "stockemotions", "joined"} <= set(figures)
    assert json.loads((out / "best" / "teacher.json").read_text())["test"]["tfns"]["n"] == figures["tfns"]["n"]


def test_student_distils_exports_and_scores_each_company(tiny: dict[str, Path]) -> None:
    teacher = tiny["root"] / "teacher" / "soft_labels.npz"
    if not teacher.is_file():
        pytest.fail("run with the teacher test above (module order)")
    out = tiny["root"] / "student"
    cfg = StudentConfig(output_dir=str(out), data_dir=str(tiny["data"]), base_model=str(tiny["base"]),
                        soft_labels=[str(teacher)], epochs=1, batch_size=16, eval_every=10, max_steps=20,
                        joins=40, lr=1e-3, swap=0.5)  # fmt: skip
    summary = train_student(cfg)
    assert summary["recipe"] == "v3" and (out / "best" / "model.pt").is_file()
    corpus = build_corpus(tiny["data"], joins=40)
    _, _, found = load_soft_labels([str(teacher)], corpus.train)
    assert found.all()
    artifact = export_checkpoint(out / "best", tiny["root"] / "artifact", version="tiny-v3").card
    assert artifact.targets, "a student trained on company targets says so on its card"
    assert "company-target pairs" in artifact.export["calibration"]
    model = OnnxModel(tiny["root"] / "artifact")
    text = "Apple soars, Tesla plunges item 7"
    as_pairs = model.predict([text, text], targets=["Apple", "Tesla"])
    plain = model.predict([text])
    assert not np.allclose(as_pairs.sentiment[0], plain.sentiment[0]), "the target changes what the model reads"
    scorer = OnnxScorer(tiny["root"] / "artifact", max_targets=1)
    [one_company, capped] = scorer.score_targets(
        ["Apple soars item 1", text], [{"AAPL": "Apple"}, {"AAPL": "Apple", "TSLA": "Tesla"}]
    )
    assert one_company.targets == {}, "one company: the message's label is the company's label"
    assert set(capped.targets) == {"AAPL"} and capped.targets_capped, "passes beyond the cap are not run"
    both = OnnxScorer(tiny["root"] / "artifact")
    runs = []
    run_ids = both.model.run_ids
    both.model.run_ids = lambda ids: runs.append(len(ids)) or run_ids(ids)  # type: ignore[method-assign]
    full = both.score_targets([text], [{"AAPL": "Apple", "TSLA": "Tesla"}])[0]
    assert set(full.targets) == {"AAPL", "TSLA"} and not full.targets_capped
    assert runs == [3], "the text and its two pairs, of about one length, ride in one model call"
    expect = as_pairs.sentiment[1]
    assert full.targets["TSLA"].p_negative == pytest.approx(float(expect[0]), abs=1e-6)


def test_lora_trains_a_small_share_of_the_parameters(tiny: dict[str, Path]) -> None:
    pytest.importorskip("peft", reason="peft is a training extra")
    out = tiny["root"] / "lora"
    cfg = StudentConfig(output_dir=str(out), data_dir=str(tiny["data"]), base_model=str(tiny["base"]), lora=2,
                        epochs=1, batch_size=16, eval_every=5, max_steps=5, joins=40,
                        write_soft_labels=False)  # fmt: skip
    summary = train_student(cfg)
    full = sum(p.numel() for p in load_encoder(str(tiny["base"])).parameters())
    assert 0 < summary["trainable_parameters"] < full / 2
    export_checkpoint(out / "best", tiny["root"] / "lora-artifact", version="tiny-lora")
    assert OnnxModel(tiny["root"] / "lora-artifact").predict(["Apple soars"]).sentiment.shape == (1, 3)
