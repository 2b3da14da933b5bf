"""The notification receiver's manifests (deploy/kubernetes/notifications), in both overlays:
valid objects, at least two replicas behind one Service, probes and the metrics port on the
receiver's health port, the secret from the Secret, every variable a setting the receiver
accepts."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from talon_stream.config._settings import load_settings

from .conftest import KUBERNETES, OVERLAYS, load_all, one, settings_variables
from .test_manifests import KUBERNETES_VERSIONS

SECRET_VARIABLE = "TALON_STREAM_NOTIFICATIONS_AUTH_TOKEN"


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def _ports(container: dict[str, Any]) -> dict[str, int]:
    return {entry["name"]: entry["containerPort"] for entry in container["ports"]}


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_receiver_objects_pass_the_kubernetes_schemas(receiver_built, overlay, version):
    objects = receiver_built[overlay]
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)
    assert sorted(obj["kind"] for obj in objects) == [
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
    ]


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_replicas_behind_one_service_on_the_webhook_port(receiver_built, overlay):
    objects = receiver_built[overlay]
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] >= 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    service = one(objects, "Service")["spec"]
    assert service["selector"] == selector
    (port,) = service["ports"]
    container = _container(objects)
    assert _ports(container)[port["targetPort"]] == int(
        one(objects, "ConfigMap")["data"]["TALON_STREAM_NOTIFICATIONS_PORT"]
    )
    assert one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    assert container["args"] == ["notifications"]
    assert container["image"].startswith("talon-stream:")


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_probes_and_metrics_on_the_health_port(receiver_built, overlay):
    objects = receiver_built[overlay]
    container = _container(objects)
    health = int(one(objects, "ConfigMap")["data"]["TALON_STREAM_NOTIFICATIONS_HEALTH_PORT"])
    ports = _ports(container)
    assert ports["metrics"] == health
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        http_get = container[probe]["httpGet"]
        assert http_get["path"] == path
        assert ports[http_get["port"]] == health
    annotations = one(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(health)


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_the_secret_comes_from_the_secret_and_the_settings_load(
    receiver_built, overlay, clean_environment
):
    objects = receiver_built[overlay]
    container = _container(objects)
    env = {entry["name"]: entry for entry in container["env"]}
    reference = env[SECRET_VARIABLE]["valueFrom"]["secretKeyRef"]
    (example,) = load_all(KUBERNETES / "secret.example.yaml")
    assert reference["name"] == example["metadata"]["name"]
    assert reference["key"] in example["stringData"]
    data = one(objects, "ConfigMap")["data"]
    assert SECRET_VARIABLE not in data
    assert set(data) | set(env) <= set(settings_variables()) | {"TALON_STREAM_LOG_FORMAT"}
    for name, value in data.items():
        clean_environment.setenv(name, value)
    settings = load_settings()
    grace = one(objects, "Deployment")["spec"]["template"]["spec"]
    budget = settings.notifications_drain_timeout_s + settings.notifications_publish_timeout_s
    assert grace["terminationGracePeriodSeconds"] > budget
