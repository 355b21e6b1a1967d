"""MODEL_CARD.md from card.json: what the model is, its data, its scores, its limits, how to rebuild it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _metrics_table(metrics: dict[str, Any]) -> str:
    lines = ["| task | test set | n | accuracy | macro-F1 | ECE |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for task in ("sentiment", "topic"):
        for variant in ("test", "test_dedup"):
            m = metrics.get(task, {}).get(variant)
            if m:
                lines.append(
                    f"| {task} | {variant} | {m['n']} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {m['ece']:.3f} |"
                )
    return "\n".join(lines)


def _fp32(card: dict[str, Any]) -> str:
    ref = card.get("metrics", {}).get("fp32_reference")
    if not ref:
        return "not measured"
    return f"sentiment {ref['sentiment']['accuracy']:.4f}, topic {ref['topic']['accuracy']:.4f} (int8 must stay within 1 point)"


def _backbone(cfg: dict[str, Any], training: dict[str, Any] | None = None) -> str:
    training = training or {}
    base = str(training.get("base_model") or cfg.get("base_model") or "")
    layers = cfg.get("layers") or training.get("encoder_layers")
    if "L3" in base or "l3" in base.lower():
        return f"paraphrase-MiniLM-L3-v2 ({layers or 3} layers × 384)"
    if layers and layers < 6:
        return f"lowest {layers} of the 6 layers of all-MiniLM-L6-v2"
    return "all-MiniLM-L6-v2 (22M parameters)"


def _targets(card: dict[str, Any]) -> str:
    if card.get("targets"):
        return "yes: the pair 'company [SEP] text' gives that company's own sentiment on the sentiment output"
    return "no: every company of a message gets the message's label"


def _domains(metrics: dict[str, Any]) -> str:
    domains = metrics.get("domains")
    if not domains:
        return ""
    from models.corpus import SET_TITLES

    lines = [
        "Other kinds of text (test parts split off by a fixed hash of the text, never tuned on):",
        "",
        "| set | what | n | accuracy | macro-F1 | read as |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for name, r in domains.items():
        lines.append(
            f"| {name} | {SET_TITLES.get(name, '')} | {r['n']} | {r.get('sentiment_accuracy', float('nan')):.4f} "
            f"| {r.get('sentiment_macro_f1', float('nan')):.4f} | {r.get('read_as', 'message')} |"
        )
    return "\n".join(lines) + "\n"


def _data(card: dict[str, Any], sizes: dict[str, Any]) -> str:
    corpus = card.get("training", {}).get("corpus")
    if not corpus:
        return (
            "Twitter Financial News Sentiment and Topic data sets (MIT licence). The official `valid` files are\n"
            "the test sets; the dev set for early stopping is a stratified, seeded 10% of `train`.\n"
            f"Training rows: {sizes.get('train', {})}; dev rows: {sizes.get('dev', {})}."
        )
    by_domain = ", ".join(f"{k} {v}" for k, v in corpus.get("train_by_domain", {}).items())
    return (
        "Twitter Financial News Sentiment and Topic (MIT; the official `valid` files are the test sets, dev is a "
        "stratified seeded 10% of `train`), SEntFiN 1.1 headlines with a label per entity, FinEntity news "
        "paragraphs with entity spans, StockEmotions StockTwits posts (bullish / bearish; the neutral output is "
        "masked for them). The last three are read from the data folder and never redistributed; each is split by "
        "a fixed hash of its normalised text (70 / 10 / 20), StockEmotions by its own files. Company-target rows "
        '("target [SEP] text") teach the sentiment head what a text means for one company; two-company texts '
        "are joined from one-company texts of the training parts; every epoch half the company-naming rows have "
        "their companies swapped for others from the S&P 500 / Nasdaq-100 list.\n\n"
        f"Training rows ({corpus.get('train_rows')}): {by_domain}. Dev rows: {corpus.get('dev_rows')}."
    )


def _precision(card: dict[str, Any], export: dict[str, Any]) -> str:
    if card.get("precision") != "int8":
        return f"{card.get('precision')} conversion of the fused fp32 graph"
    weights = "per-channel" if export.get("int8_per_channel") else "per-tensor"
    if "int8_activation_scales" in export:
        return (
            f"int8 weights ({weights}); activation scales fixed on training texts "
            f"({export.get('calibration', 'calibration texts')}), so no text depends on its batch"
        )
    return f"int8 dynamic quantisation ({weights}) of the fused fp32 graph"


def _batch_dependence(metrics: dict[str, Any]) -> str:
    rows = metrics.get("tradeoffs", {}).get("rows", [])
    mine = [r for r in rows if r.get("version") == metrics.get("_version")]
    if not mine:
        return "not measured"
    d = mine[0]["batch_dependence"]
    return (
        f"{d['changed_labels']} of {d['texts']} sentiment test texts change a label between scoring alone, in "
        f"sorted batches of 64 and in shuffled odd-sized batches (max probability difference {d['max_prob_diff']:.1e})"
    )


def _tradeoffs(metrics: dict[str, Any]) -> str:
    table = metrics.get("tradeoffs")
    if not table:
        return "Not measured for this artifact."
    from models.compare import markdown_table

    end_to_end = f" End to end: {table['end_to_end_how']}." if table.get("end_to_end_how") else ""
    return f"Measured on {table['cpu']}, {table['threads']} threads. {table['how']}.{end_to_end}\n\n{markdown_table(table)}"


def _runs(training: dict[str, Any]) -> str:
    runs = training.get("runs", [])
    if not runs:
        return ""
    lines = [
        "| run | command | wall time | best dev score | trainable parameters |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in runs:
        params = f"{r['trainable_parameters']:,}" if r.get("trainable_parameters") else "—"
        lines.append(
            f"| {r['name']} | `{r['command']}` | {r['wall_time_s'] / 60:.0f} min | {r['best_dev_score']:.4f} "
            f"| {params} |"
        )
    head = "Every training run behind this artifact (2 shared CPU cores)"
    if any(r["name"].startswith("tried") for r in runs):
        head = "Training runs (2 shared CPU cores); those named *tried* were compared and did not make this artifact"
    return head + ":\n\n" + "\n".join(lines) + "\n"


def _fp16(export: dict[str, Any]) -> str:
    fp16 = export.get("fp16")
    if not fp16:
        return "not exported"
    agree = fp16.get("fp16_vs_fp32_argmax_agreement", {})
    return (
        f"`{fp16.get('command', 'finsent export … --precision fp16')}`; on the CPU provider max abs difference to fp32 "
        f"{fp16.get('fp16_vs_fp32_max_abs_diff', float('nan')):.1e}, argmax agreement sentiment "
        f"{agree.get('sentiment', float('nan')):.4f}, topic {agree.get('topic', float('nan')):.4f}; "
        f"GPU throughput: {fp16.get('gpu_texts_per_s', 'not measured')}"
    )


def _limits_int8(export: dict[str, Any]) -> str:
    if "int8_activation_scales" in export:
        return (
            "* int8 kernels differ between instruction sets (AVX2, AVX-512 VNNI, ARM): a text's label is fixed on "
            "one machine, but a near-tie may resolve differently on another CPU."
        )
    return "* Dynamic int8 quantisation scales activations per batch: a near-tie can flip with its batch neighbours."


def render(card: dict[str, Any]) -> str:
    training = card.get("training", {})
    cfg = training.get("config", {})
    export = card.get("export", {})
    agree = export.get("int8_vs_fp32_argmax_agreement", {})
    sizes = training.get("data_sizes", {})
    overlap = card.get("metrics", {})
    return f"""# {card["version"]}

Financial sentiment (negative / neutral / positive) and topic (20 labels) of short English finance
texts — headlines, tweets, comments — from one {card.get("precision", "int8")} ONNX graph.

| | |
| --- | --- |
| backbone | {_backbone(cfg, training)}, mean pooling, two linear heads, trained jointly |
| per-company sentiment | {_targets(card)} |
| inputs | `input_ids`, `attention_mask` (dynamic batch and sequence), max {card["max_length"]} tokens, links stripped |
| outputs | `{card["outputs"]["sentiment"]}` [batch, 3], `{card["outputs"]["topic"]}` [batch, 20] (softmax in the graph) |
| precision | {_precision(card, export)} |
| batch dependence | {_batch_dependence({**card.get("metrics", {}), "_version": card["version"]})} |
| fp32 parity with PyTorch | max abs difference {export.get("fp32_max_abs_diff", float("nan")):.1e} on {export.get("texts", "?")} test texts |
| int8 vs fp32 argmax agreement | sentiment {agree.get("sentiment", float("nan")):.4f}, topic {agree.get("topic", float("nan")):.4f} |
| fp32 accuracy (same checkpoint) | {_fp32(card)} |
| fp16 graph (GPU) | {_fp16(export)} |

## Data

{_data(card, sizes)}
`test_dedup` leaves out test texts that also occur in train after lower-casing and removing links
({overlap.get("sentiment", {}).get("overlap_with_train", "?")} sentiment and {overlap.get("topic", {}).get("overlap_with_train", "?")} topic test rows;
{overlap.get("topic", {}).get("overlap_distinct_texts", "?")} distinct topic texts).

## Scores (this artifact, official test sets)

Evaluated on {card.get("metrics", {}).get("evaluated_on", "an unrecorded CPU")}.

{_metrics_table(card.get("metrics", {}))}

{_domains(card.get("metrics", {}))}
## Configurations tried

{_tradeoffs(card.get("metrics", {}))}

## Limits

* Trained on short, mostly news-wire English tweets from one period: long articles are truncated to
  {card["max_length"]} tokens, other languages and slang-heavy forum posts are out of distribution.
* "Sentiment" is market sentiment (bearish / bullish), not the writer's mood.
* Topic classes 5 (Earnings) and 7 (Financials) overlap in meaning; small classes (IPO, Gold) are the
  least reliable.
{_limits_int8(export)}

## How it was made

{_runs(training)}
```
{training.get("command") or "finsent train …"}
finsent export {cfg.get("output_dir", "runs/train")}/best -o models/artifacts/{card["version"]} --version {card["version"]} --data-dir DATA_DIR
finsent evaluate --model models/artifacts/{card["version"]} --data-dir DATA_DIR --plots models/artifacts/{card["version"]} --update-card
```

Training: {training.get("epochs_run", "?")} epochs ({training.get("steps", "?")} steps) in
{(training.get("wall_time_s") or 0) / 60:.0f} min with {cfg.get("threads") or "all"} torch thread(s); seed {cfg.get("seed")}; AdamW lr {cfg.get("lr")}
(heads {cfg.get("head_lr")}), weight decay {cfg.get("weight_decay")}, warm-up {cfg.get("warmup_ratio")}, dropout
{cfg.get("dropout")}, batch {cfg.get("batch_size")}, label smoothing {cfg.get("label_smoothing")}; best dev score
(mean macro-F1) {training.get("best", {}).get("score", float("nan")):.4f} at step {training.get("best", {}).get("step")}.
"""


def write_model_card(folder: str | Path) -> Path:
    folder = Path(folder)
    card = json.loads((folder / "card.json").read_text())
    path = folder / "MODEL_CARD.md"
    path.write_text(render(card))
    return path
