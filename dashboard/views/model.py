"""Model: the card of the model the daemon serves, and every version the daemons served or refused.

The card comes from the model folder (``FINSENT_MODEL_DIR``); the history from the store's
``model_versions`` table, which each daemon writes at start-up and at every reload attempt.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import model_history
from dashboard.ui import View, md_text
from models.card import SHIPPED_MODEL_DIR, card_path

FIGURES = ["sentiment accuracy", "sentiment macro-F1", "topic accuracy", "topic macro-F1", "test n (sentiment / topic)"]


def render(view: View) -> None:
    history = model_history.model_versions(view.url)
    current_card(history)
    served_versions(history)


def current_card(history: pd.DataFrame) -> None:
    folder = Path(os.environ.get("FINSENT_MODEL_DIR", SHIPPED_MODEL_DIR))
    path = card_path(folder)
    if not path.is_file():
        st.warning(f"No model card at {path}.")
        return
    card = json.loads(path.read_text())
    outcomes = set(history.loc[history["version"] == card["version"], "outcome"])
    if outcomes == {"refused"}:
        st.warning(
            f"The card in {path.parent} ({md_text(card['version'])}) was refused by the daemons, which keep serving "
            "the last model they loaded: see the refused candidates below."
        )
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


def served_versions(frame: pd.DataFrame) -> None:
    """Versions side by side with their official test-set figures; refused candidates with the gate's reason."""
    st.subheader("Served versions")
    loaded = frame[frame["outcome"] == "loaded"]
    if loaded.empty:
        st.info("No model load recorded yet: each daemon records its model at start-up and at every reload.")
    else:
        st.dataframe(loaded[["version", "loaded_at", "daemons", *FIGURES, "reason"]], hide_index=True)
    refused = frame[frame["outcome"] == "refused"]
    st.subheader(f"Refused candidates ({len(refused)})")
    if refused.empty:
        st.caption("None: every new model so far passed the checksums, labels, quality gate and smoke check.")
    else:
        st.dataframe(refused[["version", "loaded_at", *FIGURES, "reason"]], hide_index=True)
    st.caption(
        "Official test sets (`valid` splits). A new model is swapped in only when its test macro-F1 of each task "
        "drops by no more than FINSENT_MODEL_GATE_MAX_DROP against the serving one; the model a daemon starts "
        "with is the operator's choice and is not gated."
    )
