"""The deployment files validate offline: ``deploy/compose.yaml`` against the Compose specification's schema
(check-jsonschema's vendored copy) and ``deploy/k8s/`` against the Kubernetes schemas (kubernetes-validate),
strictly; and they say what guard needs (probes guard answers, a non-root read-only container, ports that
agree, Redis that keeps what it is told)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CORE = ["configmap.yaml", "deployment.yaml", "hpa.yaml", "secret.yaml", "service.yaml"]


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "k8s" / name).read_text())


def test_compose_validates_against_the_compose_specification():
    checked = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                              str(DEPLOY / "compose.yaml")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_compose_runs_redis_so_that_it_keeps_every_no():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    guard = compose["services"]["guard"]
    assert guard["depends_on"]["redis"]["condition"] == "service_healthy" and "/readyz" in str(guard["healthcheck"])
    assert "redis" in compose["services"] and all("healthcheck" in s for s in compose["services"].values())


@pytest.mark.parametrize("name", CORE)
def test_each_kubernetes_file_validates_strictly(name):
    kubernetes_validate.validate(_load(name), kubernetes_validate.latest_version(), strict=True)


def test_the_deployment_probes_guard_as_it_answers_and_runs_locked_down():
    pod = _load("deployment.yaml")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["grpc"] == {"port": 50051, "service": ""}  # NOT_SERVING: store away or reset
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/data", "/tmp"} <= mounts  # writable: the data directory (store.id, admin.key) and temporary files
    settings = _load("configmap.yaml")["data"]
    ports = {p["containerPort"] for p in container["ports"]}
    for name in ("GUARD_LISTEN", "GUARD_HTTP_LISTEN", "GUARD_METRICS_LISTEN"):
        assert int(settings[name].rsplit(":", 1)[1]) in ports


def test_the_optional_service_monitor_scrapes_the_service_s_metrics_port():
    monitor = _load("servicemonitor.yaml")  # a CRD: no core schema to hold it to, so its wiring is checked
    service = _load("service.yaml")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["kind"] == "ServiceMonitor"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]}
