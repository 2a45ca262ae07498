"""The plan in docker/k8s: the example plan itself, and replaceable from an overlay the way docker/README.md says."""

from __future__ import annotations

import os
import subprocess

import yaml
from conftest import EXAMPLE_PLAN, K8S_DIR

from hpsearch.search.plan.plan import load_plan_file

K8S_PLAN = K8S_DIR / "base" / EXAMPLE_PLAN.name


def test_the_kustomization_plan_is_the_example_plan() -> None:
    # A copy so that `kubectl apply -k` works (kustomize reads nothing outside the kustomization).
    assert K8S_PLAN.read_bytes() == EXAMPLE_PLAN.read_bytes(), (
        f"{K8S_PLAN} differs from {EXAMPLE_PLAN}: cp {EXAMPLE_PLAN.relative_to(K8S_DIR.parent.parent)} "
        f"{K8S_PLAN.relative_to(K8S_DIR.parent.parent)}"
    )


def test_the_workers_work_on_the_campaign_the_plan_names(k8s_builds) -> None:
    job = next(r for r in k8s_builds[""] if r["kind"] == "Job" and r["metadata"]["name"] == "hpsearch-worker")
    worker = next(c for c in job["spec"]["template"]["spec"]["containers"] if c["name"] == "worker")
    assert worker["args"][:2] == ["worker", load_plan_file(K8S_PLAN).name]


def test_an_overlay_replaces_the_plan_without_lifting_the_load_restrictor(tool, tmp_path) -> None:
    overlay = tmp_path / "deploy"
    overlay.mkdir()
    (overlay / "my-plan.yaml").write_text("name: cifar10-resnet18\n# my own plan\n")
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(K8S_DIR, overlay)],  # outside the overlay, as in docker/README.md
        "configMapGenerator": [{"name": "hpsearch-plan", "behavior": "replace",
                                "files": ["cifar10-resnet18.yaml=my-plan.yaml"]}],
    }))
    result = subprocess.run([tool("kubectl"), "kustomize", str(overlay)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    resources = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    plans = [r for r in resources if r["kind"] == "ConfigMap" and r["metadata"]["name"].startswith("hpsearch-plan")]
    assert len(plans) == 1 and plans[0]["data"]["cifar10-resnet18.yaml"].endswith("# my own plan\n")
    init = next(r for r in resources if r["kind"] == "Job" and r["metadata"]["name"] == "hpsearch-init")
    volumes = init["spec"]["template"]["spec"]["volumes"]
    assert any(v.get("configMap", {}).get("name") == plans[0]["metadata"]["name"] for v in volumes)
