"""A real Prometheus scrapes a running daemon with the project's config and rules."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from pipeline.http import HealthServer
from pipeline.tooling.broker import EmbeddedBroker, free_port
from tests.conftest import missing
from tests.helpers import ROOT, as_json, news_stream, produce, wait_until
from tests.integration.daemon_harness import daemon_settings, running_daemon

pytestmark = pytest.mark.integration


def query(port: int, expr: str) -> list[dict]:  # type: ignore[type-arg]
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            body = json.load(resp)
    except OSError:
        return []
    return body["data"]["result"] if body.get("status") == "success" else []


def test_prometheus_scrapes_the_daemon_and_evaluates_rules(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        missing("prometheus", "install the Debian package prometheus")
    settings = daemon_settings(broker.bootstrap, unique, tmp_path, model_dir)
    stream = news_stream(300, 1_767_261_600_000, 1000)
    produce(broker.bootstrap, settings.input_topics[0], as_json(stream[:150]))
    with running_daemon(settings) as daemon:
        server = HealthServer("127.0.0.1", 0, daemon.metrics.registry, daemon.readiness).start()
        config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config["rule_files"] = [str(ROOT / "deploy" / "prometheus" / "rules" / "*.yml")]
        config.pop("alerting")
        job = next(j for j in config["scrape_configs"] if j["job_name"] == "finsent")
        job["static_configs"] = [{"targets": [f"127.0.0.1:{server.port}"]}]
        config["scrape_configs"] = [job]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        log = (tmp_path / "prometheus.log").open("wb")
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            up = wait_until(lambda: query(port, 'up{job="finsent"} == 1'), 60, "the target to be up", 0.5)
            wait_until(
                lambda: query(port, "sum(finsent_messages_consumed_total) == 150"),
                60,
                "the first half in Prometheus",
                0.5,
            )
            produce(broker.bootstrap, settings.input_topics[0], as_json(stream[150:]))
            consumed = wait_until(
                lambda: query(port, "sum(finsent_messages_consumed_total) == 300"),
                60,
                "the second half in Prometheus",
                0.5,
            )
            rule = wait_until(
                lambda: query(port, "job:finsent_messages_consumed:rate5m > 0"),
                60,
                "the recording rule to see the increase",
                0.5,
            )
            info = wait_until(lambda: query(port, "finsent_model_info"), 30, "model info", 0.5)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            server.close()
    assert up[0]["metric"]["instance"] == f"127.0.0.1:{server.port}"
    assert float(consumed[0]["value"][1]) == 300
    assert rule[0]["metric"] == {"__name__": "job:finsent_messages_consumed:rate5m", "job": "finsent"}
    assert info[0]["metric"]["version"]
