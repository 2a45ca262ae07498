"""docker/k8s: every kustomization builds, every resource is valid Kubernetes, and the workers are
set up to share GPUs, the database and the plan the way docker/README.md describes."""

from __future__ import annotations

import re
import signal
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from conftest import K8S_DIR, K8S_KUSTOMIZATIONS

# The oldest release we document (backoffLimitPerIndex is GA from 1.33) and the newest schema
# kubernetes-validate ships.
K8S_VERSIONS = ("1.33.0", kubernetes_validate.utils.latest_version())


def find(resources: list[dict], kind: str, name: str) -> dict:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def container(pod_spec: dict, name: str, key: str = "containers") -> dict:
    return next(c for c in pod_spec[key] if c["name"] == name)


def env_of(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env", [])}


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("kustomization", K8S_KUSTOMIZATIONS)
def test_every_resource_validates(k8s_builds, kustomization, version):
    for resource in k8s_builds[kustomization]:
        # strict: an unknown (misspelt) field is an error, not silently dropped by the API server.
        kubernetes_validate.validate(resource, version, strict=True)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_data_loader_pod_validates(version):
    for resource in yaml.safe_load_all((K8S_DIR / "tools" / "data-loader-pod.yaml").read_text()):
        kubernetes_validate.validate(resource, version, strict=True)


@pytest.mark.parametrize("kustomization", K8S_KUSTOMIZATIONS)
def test_hpsearch_images_carry_a_tag(k8s_builds, kustomization):
    for resource in k8s_builds[kustomization]:
        pod = resource.get("spec", {}).get("template", {}).get("spec", {})
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            assert re.fullmatch(r"[^:]+:[\w.-]+", c["image"]), f"{c['name']}: untagged image {c['image']}"


def test_workers_are_an_indexed_job_with_one_gpu_each(k8s_builds):
    job = find(k8s_builds[""], "Job", "hpsearch-worker")["spec"]
    assert job["completionMode"] == "Indexed"
    assert job["parallelism"] >= 1
    assert job["completions"] == job["parallelism"]
    assert job["backoffLimitPerIndex"] >= 1
    pod = job["template"]["spec"]
    worker = container(pod, "worker")
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_workers_get_time_to_hand_their_trial_back(k8s_builds):
    pod = find(k8s_builds[""], "Job", "hpsearch-worker")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 120


def test_worker_failure_policy_stops_on_bad_input_and_ignores_disruptions(k8s_builds):
    job = find(k8s_builds[""], "Job", "hpsearch-worker")["spec"]
    # podFailurePolicy is only allowed with restartPolicy Never.
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    rules = job["podFailurePolicy"]["rules"]
    assert any(r["action"] == "FailJob" and r["onExitCodes"]["values"] == [2] for r in rules)
    # A worker stopped by SIGTERM exits 128 + 15 (tests/campaign/test_workers.py): its index is retried
    # with a fresh pod rather than completed, and the stop does not count against its retries.
    assert any(r["action"] == "Ignore" and r["onExitCodes"]["values"] == [128 + signal.SIGTERM] for r in rules
               if "onExitCodes" in r)
    assert any(
        r["action"] == "Ignore" and r["onPodConditions"][0]["type"] == "DisruptionTarget" for r in rules
        if "onPodConditions" in r
    )


def test_workers_wait_for_their_campaign_in_the_worker_itself(k8s_builds):
    # No init container that loops for ever on a wrong password: the worker's own bounded wait.
    pod = find(k8s_builds[""], "Job", "hpsearch-worker")["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    args = container(pod, "worker")["args"]
    assert float(args[args.index("--wait-for-campaign") + 1]) > 0


def test_storage_comes_from_the_secret_everywhere_by_default(k8s_builds):
    resources = k8s_builds[""]
    # The base must not ship the Secret: applying it would overwrite the user's real one.
    assert not [r for r in resources if r["kind"] == "Secret"]
    for kind, name, c in [
        ("Job", "hpsearch-worker", "worker"),
        ("Job", "hpsearch-init", "init"),
        ("Deployment", "hpsearch-dashboard", "dashboard"),
    ]:
        pod = find(resources, kind, name)["spec"]["template"]["spec"]
        ref = env_of(container(pod, c))["HPSEARCH_STORAGE"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "hpsearch-storage", "key": "HPSEARCH_STORAGE"}


def test_worker_mounts_data_read_only(k8s_builds):
    pod = find(k8s_builds[""], "Job", "hpsearch-worker")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in container(pod, "worker")["volumeMounts"]}
    assert mounts["/data"]["readOnly"] is True
    assert "/artifacts" in mounts
    assert env_of(container(pod, "worker"))["HPSEARCH_DATA_DIR"]["value"] == "/data"


def test_init_job_reads_the_plan_from_the_generated_configmap(k8s_builds):
    resources = k8s_builds[""]
    pod = find(resources, "Job", "hpsearch-init")["spec"]["template"]["spec"]
    init = container(pod, "init")
    assert init["args"][0] == "init"
    plan_path = init["args"][1]
    mount = next(m for m in init["volumeMounts"] if plan_path.startswith(m["mountPath"] + "/"))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    configmap = find(resources, "ConfigMap", volume["configMap"]["name"])
    assert plan_path.rsplit("/", 1)[1] in configmap["data"]


def test_dashboard_is_a_cluster_ip_service_on_its_container_port(k8s_builds):
    resources = k8s_builds[""]
    service = find(resources, "Service", "hpsearch-dashboard")["spec"]
    assert service["type"] == "ClusterIP"
    pod = find(resources, "Deployment", "hpsearch-dashboard")["spec"]["template"]["spec"]
    args = container(pod, "dashboard")["args"]
    assert args[args.index("--host") + 1] == "0.0.0.0"
    assert service["ports"][0]["port"] == int(args[args.index("--port") + 1])


def test_proxy_overlay_routes_workers_through_the_proxy(k8s_builds):
    resources = k8s_builds["overlays/with-proxy"]
    pod = find(resources, "Job", "hpsearch-worker")["spec"]["template"]["spec"]
    storage = env_of(container(pod, "worker"))["HPSEARCH_STORAGE"]
    assert storage == {"name": "HPSEARCH_STORAGE", "value": "grpc://hpsearch-proxy:13000"}
    url = urlsplit("grpc://hpsearch-proxy:13000")
    service = find(resources, "Service", url.hostname)["spec"]
    assert service["ports"][0]["port"] == url.port
    proxy_pod = find(resources, "Deployment", "hpsearch-proxy")["spec"]["template"]["spec"]
    proxy = container(proxy_pod, "proxy")
    assert proxy["args"][0] == "storage-proxy"
    assert proxy["args"][proxy["args"].index("--port") + 1] == str(url.port)
    # The proxy itself talks to PostgreSQL with the Secret's URL.
    assert "secretKeyRef" in env_of(proxy)["HPSEARCH_STORAGE"]["valueFrom"]


def test_postgres_overlay_secret_points_at_its_own_database(k8s_builds):
    resources = k8s_builds["overlays/with-postgres"]
    statefulset = find(resources, "StatefulSet", "hpsearch-postgres")["spec"]
    postgres = container(statefulset["template"]["spec"], "postgres")
    assert re.fullmatch(r"postgres:\d+", postgres["image"])
    assert postgres["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    secret = find(resources, "Secret", "hpsearch-storage")["stringData"]
    url = urlsplit(secret["HPSEARCH_STORAGE"])
    find(resources, "Service", url.hostname)
    assert url.password == secret["POSTGRES_PASSWORD"]
    assert url.username == env_of(postgres)["POSTGRES_USER"]["value"]
    assert url.path.lstrip("/") == env_of(postgres)["POSTGRES_DB"]["value"]


def test_only_the_workers_reach_the_proxy(k8s_builds):
    resources = k8s_builds["overlays/with-proxy"]
    proxy_pod = find(resources, "Deployment", "hpsearch-proxy")["spec"]["template"]
    args = container(proxy_pod["spec"], "proxy")["args"]
    # The proxy listens on loopback unless told otherwise; in a pod it must serve the Service's traffic.
    assert args[args.index("--host") + 1] == "0.0.0.0"
    [policy] = [r for r in resources if r["kind"] == "NetworkPolicy"]
    spec = policy["spec"]
    selected = spec["podSelector"]["matchLabels"]
    assert selected.items() <= proxy_pod["metadata"]["labels"].items()
    assert spec["policyTypes"] == ["Ingress"]
    [rule] = spec["ingress"]
    [source] = rule["from"]
    worker_labels = find(resources, "Job", "hpsearch-worker")["spec"]["template"]["metadata"]["labels"]
    assert source["podSelector"]["matchLabels"].items() <= worker_labels.items()
    for other in ("hpsearch-dashboard",):  # nothing else the build runs is admitted
        labels = find(resources, "Deployment", other)["spec"]["template"]["metadata"]["labels"]
        assert not source["podSelector"]["matchLabels"].items() <= labels.items()
    assert rule["ports"] == [{"protocol": "TCP", "port": int(args[args.index("--port") + 1])}]
