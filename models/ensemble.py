"""Does an ensemble teach better than one teacher? Each model and each average of their logits, on every set.

    python -m models.ensemble --teacher runs/teacher/best --student runs/l6-a/best --student runs/l6-b/best \\
        --data-dir DATA [--part dev] [-o ensemble.json]

Scores the teacher (all its layers, PyTorch) and each student checkpoint on the named sets of the v3
corpus (``dev`` by default: the choice of soft labels is tuned there, never on test), then every
combination of two or more of them by averaging their logits. Prints one row per model or combination.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from models.corpus import SET_TITLES, build_corpus, dev_score, score_set
from models.data import Example


def student_logits(folder: str, rows: Sequence[Example]) -> tuple[np.ndarray, np.ndarray]:
    from models.tokenization import encode, load_tokenizer, pad_id_of
    from models.train import load_checkpoint, predict

    model, meta = load_checkpoint(folder)
    tokenizer = load_tokenizer(f"{folder}/tokenizer.json", int(meta.get("config", {}).get("max_length") or 64))
    ids = encode(tokenizer, [r.text for r in rows], [r.target for r in rows])
    return predict(model, ids, pad_id_of(tokenizer), logits=True)


def compare(teacher: str | None, students: Sequence[str], data_dir: str | None, part: str) -> list[dict[str, Any]]:
    corpus = build_corpus(data_dir)
    sets = corpus.dev if part == "dev" else corpus.test
    logits: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    if teacher:
        from models.teacher_eval import load_teacher, teacher_predict

        loaded = load_teacher(teacher)
        logits["teacher"] = {name: teacher_predict(loaded, rows) for name, rows in sets.items()}
    for i, folder in enumerate(students):
        logits[f"student{i + 1}"] = {name: student_logits(folder, rows) for name, rows in sets.items()}
    rows_out = []
    names = list(logits)
    for k in range(1, len(names) + 1):
        for combo in itertools.combinations(names, k):
            results = {}
            for name, rows in sets.items():
                s = np.mean([logits[m][name][0] for m in combo], axis=0)
                t = np.mean([logits[m][name][1] for m in combo], axis=0)
                results[name] = score_set(rows, s, t)
            rows_out.append({"models": " + ".join(combo), "score": dev_score(results), "sets": results})
    return rows_out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m models.ensemble", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--teacher")
    parser.add_argument("--student", action="append", default=[])
    parser.add_argument("--data-dir", default=os.environ.get("FINSENT_DATA_DIR"))
    parser.add_argument("--part", choices=["dev", "test"], default="dev")
    parser.add_argument("-o", "--output")
    args = parser.parse_args(argv)
    rows = compare(args.teacher, args.student, args.data_dir, args.part)
    for i, s in enumerate(args.student):
        print(f"student{i + 1} = {s}")
    names = list(rows[0]["sets"])
    print(f"{'models':<40} {'score':>6} " + " ".join(f"{n[:12]:>12}" for n in names))
    for row in rows:
        figures = []
        for n in names:
            r = row["sets"][n]
            figures.append(r.get("topic_accuracy") if n.startswith("tfnt") else r.get("sentiment_accuracy"))
        print(f"{row['models']:<40} {row['score']:>6.4f} " + " ".join(f"{f:>12.4f}" for f in figures))
    print(
        "(accuracy per set; score = the dev selection figure: " + ", ".join(SET_TITLES.get(n, n) for n in names) + ")"
    )
    if args.output:
        with open(args.output, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
