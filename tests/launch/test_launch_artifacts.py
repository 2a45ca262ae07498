"""Every launcher keeps checkpoints, curves and weights on one shared volume: workers, dashboard and cli agree
on the artifacts path, and it is a mounted volume, never the container's own working directory."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import K8S_KUSTOMIZATIONS
from container import artifacts_path, image_env, image_workdir, under
from worker_argv import COMPOSE_FILE, SBATCH_FILE, dockerfile_instructions, image_entrypoint


def _compose_mounts(service: dict) -> list[tuple[str, str]]:
    """(source, target) of each volume of a compose service, short or long syntax."""
    mounts = []
    for v in service.get("volumes", []):
        if isinstance(v, str):
            source, target = v.split(":")[:2]
            mounts.append((source, target))
        else:
            mounts.append((v["source"], v["target"]))
    return mounts


def test_the_image_keeps_artifacts_on_a_volume_outside_its_working_directory():
    path = artifacts_path([], image_env(), image_workdir())
    volumes = json.loads([rest for kw, rest in dockerfile_instructions() if kw == "VOLUME"][-1])
    assert any(under(path, v) for v in volumes), f"{path} is not on a VOLUME of the image"
    assert not under(path, image_workdir())


@pytest.mark.parametrize("service", ["worker", "dashboard", "cli"])
def test_compose_services_keep_artifacts_on_the_shared_named_volume(service):
    spec = yaml.safe_load(COMPOSE_FILE.read_text())
    svc = spec["services"][service]
    argv = [*image_entrypoint(), *svc.get("command", [])]
    env = {**image_env(), **{k: v for k, v in svc.get("environment", {}).items() if "${" not in v}}
    path = artifacts_path(argv, env, svc.get("working_dir", image_workdir()))
    assert path == artifacts_path([], image_env(), image_workdir()), f"{service} keeps artifacts elsewhere"
    [source] = [source for source, target in _compose_mounts(svc) if under(path, target)]
    assert source in spec["volumes"], f"{service}: {path} is not on a named volume"
    assert source == "artifacts"


@pytest.mark.parametrize("kustomization", K8S_KUSTOMIZATIONS)
def test_k8s_workers_and_dashboard_keep_artifacts_on_one_shared_claim(k8s_builds, kustomization):
    resources = k8s_builds[kustomization]
    claims = {r["metadata"]["name"]: r for r in resources if r["kind"] == "PersistentVolumeClaim"}
    used = {}
    for kind, name, container_name in [("Job", "hpsearch-worker", "worker"),
                                       ("Deployment", "hpsearch-dashboard", "dashboard")]:
        pod = next(r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name)["spec"]["template"]
        c = next(c for c in pod["spec"]["containers"] if c["name"] == container_name)
        argv = [*c.get("command", image_entrypoint()), *c.get("args", [])]
        env = {**image_env(), **{e["name"]: e["value"] for e in c.get("env", []) if "value" in e}}
        path = artifacts_path(argv, env, c.get("workingDir", image_workdir()))
        [mount] = [m for m in c["volumeMounts"] if under(path, m["mountPath"])]
        assert not mount.get("readOnly"), f"{name} cannot write its artifacts"
        volume = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])
        used[name] = (path, volume["persistentVolumeClaim"]["claimName"])
    assert len(set(used.values())) == 1, f"workers and dashboard disagree: {used}"
    (_, claim), = set(used.values())
    assert claims[claim]["spec"]["accessModes"] == ["ReadWriteMany"], "pods on other nodes must share it"


STUB = """#!/bin/bash
echo "$HPSEARCH_ARTIFACTS_DIR" > "$STUB_LOG"
"""


@pytest.mark.parametrize("given", [None, "/shared/campaign/artifacts"])
def test_slurm_tasks_share_one_absolute_artifacts_folder(tmp_path: Path, given: str | None):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "hpsearch").write_text(STUB)
    (bin_dir / "hpsearch").chmod(0o755)
    submit_dir = tmp_path / "submitted-from"
    submit_dir.mkdir()
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "STUB_LOG": str(tmp_path / "log"),
           "HPSEARCH_STORAGE": "postgresql+psycopg2://hpsearch@db:5432/hpsearch",
           "HPSEARCH_DATA_DIR": str(tmp_path), "SLURM_SUBMIT_DIR": str(submit_dir)}
    if given:
        env["HPSEARCH_ARTIFACTS_DIR"] = given
    # Slurm starts the script in the submit folder; a node's own folder must not decide where artifacts go.
    subprocess.run(["bash", str(SBATCH_FILE)], env=env, cwd=tmp_path, check=True, capture_output=True, timeout=30)
    assert (tmp_path / "log").read_text().strip() == (given or str(submit_dir / "artifacts"))
