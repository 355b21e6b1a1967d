"""The builds a benchmark compares: this checkout, and an earlier commit checked out beside it.

An earlier build is a detached ``git worktree`` of a ref, in a temporary folder, removed afterwards. Its
daemon runs as ``python -m pipeline run`` with that folder as the working directory, so Python imports
its ``pipeline`` and ``models`` packages rather than this checkout's (checked, and recorded in the report).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class BuildError(RuntimeError):
    """The earlier build cannot be checked out."""


@dataclass(frozen=True)
class Build:
    name: str  # "new" or "previous"
    ref: str
    commit: str
    root: Path  # where its daemon runs from
    imports_from: str  # where its ``pipeline`` package is imported from

    def describe(self) -> dict[str, str]:
        """For the report: where the build imported from, said without this machine's paths."""
        own = Path(self.imports_from).resolve() == self.root.resolve()
        return {
            "ref": self.ref,
            "commit": self.commit,
            "imports_from": "its own checkout" if own else self.imports_from,
        }


def shown(path: Path) -> str:
    """``path`` as a report names it: relative to this checkout when it lies inside it."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(resolved)


def _git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S607
    if done.returncode != 0:
        raise BuildError(f"git {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def _python_in(root: Path, code: str) -> subprocess.CompletedProcess[str]:
    """``code`` run by this Python started in ``root``, so that it imports that build's packages."""
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False)


def imported_from(root: Path) -> str:
    """The folder ``import pipeline`` resolves to when Python starts in ``root``."""
    done = _python_in(root, "import pipeline, pathlib; print(pathlib.Path(pipeline.__file__).parent.parent)")
    return done.stdout.strip() or f"(cannot import: {done.stderr.strip()[-200:]})"


def default_layout(root: Path) -> tuple[int, int] | None:
    """(scoring workers, threads each) the build in ``root`` derives on this machine when not told; ``None``
    when it cannot say (a build older than ``pipeline.config.scoring_layout``)."""
    done = _python_in(root, "from pipeline.config import scoring_layout; print(*scoring_layout())")
    try:
        workers, threads = (int(v) for v in done.stdout.split())
    except ValueError:
        return None
    return workers, threads


def this_build() -> Build:
    """This checkout (its commit, marked ``+changes`` when the tree differs from it)."""
    try:
        commit = _git("rev-parse", "--short=10", "HEAD")
        if _git("status", "--porcelain", "--untracked-files=no"):
            commit += "+changes"
    except (BuildError, OSError):
        commit = "unknown (not a git checkout)"
    return Build("new", "HEAD", commit, ROOT, imported_from(ROOT))


@contextmanager
def previous_build(ref: str) -> Iterator[Build]:
    """A detached worktree of ``ref`` for the duration of the block."""
    commit = _git("rev-parse", "--short=10", f"{ref}^{{commit}}")
    with tempfile.TemporaryDirectory(prefix="finsent-previous-") as tmp:
        folder = Path(tmp) / "build"
        _git("worktree", "add", "--detach", str(folder), commit)
        try:
            build = Build("previous", ref, commit, folder, imported_from(folder))
            if Path(build.imports_from).resolve() != folder.resolve():
                raise BuildError(
                    f"the build of {ref} would import pipeline from {build.imports_from}, not from its worktree"
                )
            yield build
        finally:
            _git("worktree", "remove", "--force", str(folder))
