"""What every ``finsent`` subcommand shares: the one-sentence error exit and the data folder option."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

DataDir = Annotated[
    Optional[Path],
    typer.Option("--data-dir", envvar="FINSENT_DATA_DIR", help="Directory holding the sentiment and topic CSVs."),
]


def fail(message: str) -> typer.Exit:
    """Print one readable sentence to stderr and return the exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)
