"""The layout rules that import-linter cannot check: rooms small enough to read in one sitting."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400
PACKAGES = ("pipeline", "models", "dashboard")


def test_no_source_file_is_over_400_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }
    assert sizes, "no source files found: is the test looking in the right place?"
    too_long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not too_long, f"split these into rooms of at most {MAX_LINES} lines: {too_long}"


def test_import_contracts_are_declared_for_every_wall() -> None:
    contracts = (ROOT / ".importlinter").read_text()
    for wall in ("serving", "pure", "dashboard", "no-cycles"):
        assert f"[importlinter:contract:{wall}]" in contracts
