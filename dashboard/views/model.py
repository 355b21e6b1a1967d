"""Model: the card of the model the daemon serves, its test-set figures and confusion matrices."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.ui import View
from models.card import SHIPPED_MODEL_DIR, card_path


def render(view: View) -> None:
    folder = Path(os.environ.get("FINSENT_MODEL_DIR", SHIPPED_MODEL_DIR))
    path = card_path(folder)
    if not path.is_file():
        st.warning(f"No model card at {path}.")
        return
    card = json.loads(path.read_text())
    st.subheader(f"{card['version']} · {card['precision']} · base {Path(card.get('base_model', '')).name or '?'}")
    rows = []
    metrics = card.get("metrics", {})
    for task in ("sentiment", "topic"):
        for variant in ("test", "test_dedup"):
            m = metrics.get(task, {}).get(variant)
            if m:
                rows.append(
                    {
                        "task": task,
                        "test set": variant,
                        "n": m["n"],
                        "accuracy": m["accuracy"],
                        "macro-F1": m["macro_f1"],
                        "ECE": m["ece"],
                    }
                )
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    fp32 = metrics.get("fp32_reference")
    if fp32:
        st.caption(
            f"fp32 graph of the same checkpoint: sentiment accuracy {fp32['sentiment']['accuracy']:.4f}, "
            f"topic accuracy {fp32['topic']['accuracy']:.4f}"
        )
    images = sorted(path.parent.glob("confusion_*.png"))
    for column, image in zip(st.columns(max(1, len(images))), images, strict=False):
        column.image(str(image), caption=image.stem.replace("_", " "))
    with st.expander("Card (JSON)"):
        st.json(card)
