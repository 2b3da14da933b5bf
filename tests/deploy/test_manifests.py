"""The Kubernetes manifests in ``deploy/kubernetes``: they build with kustomize, every object
passes the Kubernetes JSON schemas (``kubernetes-validate``, strict: unknown fields fail), and
they agree with the worker — its settings, its health endpoint, its drain timeout, the image's
user — and with each other (selectors, the autoscalers' target, group and partitions).

KEDA's ScaledObject is a custom resource with no schema in ``kubernetes-validate``; its fields
are checked against the KEDA fields named below, and the HPA that KEDA creates from it is
validated as an ``autoscaling/v2`` object.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import kubernetes_validate
import pytest

from talon_stream.config._settings import load_settings
from talon_stream.kafka._producer import AsyncProducer

from .conftest import (
    COMPOSE_FILE,
    DOCKERFILE,
    KUBERNETES,
    OVERLAYS,
    load_all,
    one,
    settings_variables,
)

#: The oldest and the newest Kubernetes the manifests are checked against.
KUBERNETES_VERSIONS = ("1.29", kubernetes_validate.latest_version())
API_KEY_VARIABLE = "TALON_STREAM_TALON_API_KEY"
API_KEY_FILE_VARIABLE = "TALON_STREAM_TALON_API_KEY_FILE"
#: ScaledObject ``spec`` fields (KEDA 2.x) and the Kafka scaler's trigger metadata.
KEDA_SPEC_FIELDS = {
    "scaleTargetRef",
    "pollingInterval",
    "initialCooldownPeriod",
    "cooldownPeriod",
    "idleReplicaCount",
    "minReplicaCount",
    "maxReplicaCount",
    "fallback",
    "advanced",
    "triggers",
}
KEDA_KAFKA_METADATA = {
    "bootstrapServers",
    "consumerGroup",
    "topic",
    "lagThreshold",
    "activationLagThreshold",
    "offsetResetPolicy",
    "allowIdleConsumers",
    "excludePersistentLag",
    "scaleToZeroOnInvalidOffset",
    "limitToPartitionsWithLag",
    "partitionLimitation",
    "version",
    "sasl",
    "tls",
}


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def _configmap(objects: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = one(objects, "ConfigMap")["data"]
    return data


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def _compose_partitions() -> int:
    (compose,) = load_all(COMPOSE_FILE)
    return int(compose["services"]["topics"]["environment"]["PARTITIONS"])


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_passes_the_kubernetes_schemas(built, overlay, version):
    checked = []
    for obj in built[overlay]:
        if obj["apiVersion"].startswith("keda.sh/"):
            continue  # a custom resource: see test_the_scaled_object_uses_keda_fields
        kubernetes_validate.validate(obj, version, strict=True)
        checked.append(obj["kind"])
    expected = {"ConfigMap", "Deployment", "PodDisruptionBudget"}
    expected |= {"HorizontalPodAutoscaler"} if overlay == "hpa" else set()
    assert set(checked) == expected


def test_the_schema_check_rejects_an_unknown_field(built):
    deployment = one(built["keda"], "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "terminationGracePeriod": 60}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_secret_example_is_valid_but_applied_by_no_kustomization(built):
    (example,) = load_all(KUBERNETES / "secret.example.yaml")
    kubernetes_validate.validate(example, KUBERNETES_VERSIONS[-1], strict=True)
    assert "EXAMPLE ONLY" in (KUBERNETES / "secret.example.yaml").read_text(encoding="utf-8")
    for objects in built.values():
        assert not [obj for obj in objects if obj["kind"] == "Secret"]


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_the_api_key_is_a_file_of_the_mounted_secret_never_embedded(built, overlay):
    objects = built[overlay]
    (example,) = load_all(KUBERNETES / "secret.example.yaml")
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    container = _container(objects)
    env = _env(container)
    # The key comes as a file, so that a rotated Secret reaches the running worker.
    assert API_KEY_VARIABLE not in env
    key_file = env[API_KEY_FILE_VARIABLE]["value"]
    folder, _, name = key_file.rpartition("/")
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == folder]
    assert mount.get("readOnly") is True
    assert "subPath" not in mount  # a subPath mount is never updated by the kubelet
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    secret = volume["secret"]
    assert secret["secretName"] == example["metadata"]["name"]
    assert not secret.get("optional", False)
    (item,) = [i for i in secret["items"] if i["path"] == name]
    assert item["key"] in example["stringData"]
    # Readable by the worker's group only, which owns the volume's files.
    assert secret["defaultMode"] & 0o007 == 0
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    # Nothing else carries a key: no literal in the env, none in the ConfigMap.
    assert API_KEY_VARIABLE not in _configmap(objects)
    for entry in env.values():
        if "value" in entry and not entry["name"].endswith("_FILE"):
            assert "KEY" not in entry["name"]
            assert "PASSWORD" not in entry["name"]


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_variable_is_a_worker_setting_and_its_value_is_accepted(
    built, overlay, clean_environment
):
    known = settings_variables()
    container = _container(built[overlay])
    data = _configmap(built[overlay])
    (source,) = container["envFrom"]
    assert source["configMapRef"]["name"] == one(built[overlay], "ConfigMap")["metadata"]["name"]
    names = set(data) | set(_env(container))
    assert names <= set(known), f"not worker settings: {sorted(names - set(known))}"
    for name, value in data.items():
        clean_environment.setenv(name, value)
    settings = load_settings()  # raises ConfigurationError on a value the worker refuses
    assert settings.health_port is not None


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_probes_hit_the_health_endpoint_on_the_configured_port(built, overlay):
    container = _container(built[overlay])
    port = int(_configmap(built[overlay])["TALON_STREAM_HEALTH_PORT"])
    ports = {entry["name"]: entry["containerPort"] for entry in container["ports"]}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        http_get = container[probe]["httpGet"]
        assert http_get["path"] == path
        assert ports.get(http_get["port"], http_get["port"]) == port


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_the_grace_period_outlasts_the_drain_and_the_producer_flush(built, overlay):
    pod = one(built[overlay], "Deployment")["spec"]["template"]["spec"]
    drain_s = float(_configmap(built[overlay])["TALON_STREAM_DRAIN_TIMEOUT_S"])
    flush_s = inspect.signature(AsyncProducer.close).parameters["timeout_s"].default
    assert pod["terminationGracePeriodSeconds"] > drain_s + flush_s


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_the_worker_runs_as_the_images_non_root_user_on_a_read_only_filesystem(built, overlay):
    deployment = one(built[overlay], "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = _container(built[overlay])
    user = re.search(r"^USER (\d+):(\d+)$", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    assert user is not None
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(user[1]) != 0
    assert pod["securityContext"]["runAsGroup"] == int(user[2])
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert any(mount["mountPath"] == "/tmp" for mount in container["volumeMounts"])
    assert container["image"].startswith("talon-stream:")
    assert container["args"] == ["run"]
    assert "memory" in container["resources"]["limits"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_selectors_and_the_disruption_budget_match_the_pods(built, overlay):
    deployment = one(built[overlay], "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    budget = one(built[overlay], "PodDisruptionBudget")["spec"]
    assert budget["selector"]["matchLabels"] == selector
    assert budget["maxUnavailable"] == 1
    # Rolling updates never add a pod beyond the partitions (it would wait, never ready).
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    assert "replicas" not in deployment["spec"]  # the autoscaler owns it


def test_the_scaled_object_uses_keda_fields_and_targets_the_workers(built, clean_environment):
    objects = built["keda"]
    scaled = one(objects, "ScaledObject")
    spec = scaled["spec"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert set(spec) <= KEDA_SPEC_FIELDS
    target = spec["scaleTargetRef"]
    deployment = one(objects, "Deployment")
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    assert set(metadata) <= KEDA_KAFKA_METADATA
    assert all(isinstance(value, str) for value in metadata.values())
    data = _configmap(objects)
    assert metadata["bootstrapServers"] == data["TALON_STREAM_BOOTSTRAP_SERVERS"]
    assert metadata["consumerGroup"] == data["TALON_STREAM_GROUP_ID"]
    assert "topic" not in metadata  # the lag of every input topic counts
    assert metadata["allowIdleConsumers"] == "false"
    consumer = load_settings().consumer_config()
    assert metadata["offsetResetPolicy"] == consumer["auto.offset.reset"]


def test_the_hpa_keda_creates_is_a_valid_autoscaling_v2_object(built):
    spec = one(built["keda"], "ScaledObject")["spec"]
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "keda-hpa-talon-stream"},
        "spec": {
            "scaleTargetRef": spec["scaleTargetRef"],
            "minReplicas": spec["minReplicaCount"],
            "maxReplicas": spec["maxReplicaCount"],
            "behavior": spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"],
        },
    }
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(hpa, version, strict=True)


def test_both_autoscalers_stay_within_the_partitions_and_agree(built):
    scaled = one(built["keda"], "ScaledObject")["spec"]
    hpa = one(built["hpa"], "HorizontalPodAutoscaler")["spec"]
    partitions = _compose_partitions()
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"] <= partitions
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (
        scaled["minReplicaCount"],
        scaled["maxReplicaCount"],
    )
    (metric,) = hpa["metrics"]
    assert metric["type"] == "External"
    target = metric["external"]["target"]
    assert target["type"] == "AverageValue"
    (trigger,) = scaled["triggers"]
    assert target["averageValue"] == trigger["metadata"]["lagThreshold"]
    group = _configmap(built["hpa"])["TALON_STREAM_GROUP_ID"]
    assert metric["external"]["metric"]["selector"]["matchLabels"]["consumergroup"] == group
    assert hpa["scaleTargetRef"]["name"] == one(built["hpa"], "Deployment")["metadata"]["name"]
    assert hpa["behavior"] == scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
