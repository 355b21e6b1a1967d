"""A bench report names its model and builds without the paths of the machine it ran on."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import scoring_layout
from pipeline.tooling.builds import ROOT, Build, default_layout, shown


def test_a_path_inside_the_checkout_is_shown_relative_to_it() -> None:
    assert shown(ROOT / "models" / "artifacts" / "x") == "models/artifacts/x"
    assert shown(ROOT / "models" / ".." / "models" / "y") == "models/y"


def test_a_path_outside_the_checkout_is_shown_whole(tmp_path: Path) -> None:
    assert shown(tmp_path / "model") == str((tmp_path / "model").resolve())


def test_a_build_importing_from_its_own_folder_says_so_and_any_other_says_where(tmp_path: Path) -> None:
    own = Build("previous", "HEAD~1", "abc", tmp_path, str(tmp_path))
    assert own.describe() == {"ref": "HEAD~1", "commit": "abc", "imports_from": "its own checkout"}
    stray = Build("previous", "HEAD~1", "abc", tmp_path, "/elsewhere")
    assert stray.describe()["imports_from"] == "/elsewhere"


def test_a_build_says_its_own_default_layout(tmp_path: Path) -> None:
    assert default_layout(ROOT) == scoring_layout()
    other = tmp_path / "other" / "pipeline"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("")
    (other / "config.py").write_text("def scoring_layout():\n    return 3, 5\n")
    assert default_layout(other.parent) == (3, 5)  # that build's own rule, not this checkout's
    old = tmp_path / "old" / "pipeline"
    old.mkdir(parents=True)
    (old / "__init__.py").write_text("")
    (old / "config.py").write_text("# a release before scoring_layout\n")
    assert default_layout(old.parent) is None  # the bench then runs it with this build's layout
