"""docker/Dockerfile and .dockerignore: a pinned CUDA PyTorch base whose torch satisfies the project,
a non-root user, `hpsearch` as the entrypoint, and no local clutter or secrets in the build context."""

from __future__ import annotations

import json
import re
import tomllib

from packaging.requirements import Requirement
from worker_argv import DOCKERFILE, REPO_ROOT, dockerfile_instructions, image_entrypoint

DOCKERIGNORE = REPO_ROOT / ".dockerignore"


def instructions(keyword: str) -> list[str]:
    return [rest for kw, rest in dockerfile_instructions(DOCKERFILE) if kw == keyword]


def test_base_is_an_official_pytorch_cuda_runtime_pinned_by_tag():
    (base,) = instructions("FROM")
    image, _, tag = base.partition(":")
    assert image == "pytorch/pytorch"
    assert re.fullmatch(r"\d+\.\d+\.\d+-cuda[\d.]+-cudnn\d+-runtime", tag), f"not a pinned runtime tag: {tag}"


def test_base_torch_satisfies_the_project_requirement():
    # The image keeps its preinstalled torch: that torch must be one the project accepts.
    torch_version = instructions("FROM")[0].partition(":")[2].split("-")[0]
    deps = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch = next(Requirement(d) for d in deps if Requirement(d).name == "torch")
    assert torch.specifier.contains(torch_version), f"base torch {torch_version} vs {torch}"


def test_runs_as_a_numeric_non_root_user():
    user = instructions("USER")[-1]
    uid = user.split(":")[0]
    # Numeric, so Kubernetes' runAsNonRoot can check it.
    assert uid.isdigit() and int(uid) != 0


def test_entrypoint_is_hpsearch():
    assert image_entrypoint() == ["hpsearch"]


def test_data_and_artifact_volumes():
    volumes = json.loads(instructions("VOLUME")[-1])
    assert {"/data", "/artifacts"} <= set(volumes)
    assert "HPSEARCH_DATA_DIR=/data" in " ".join(instructions("ENV"))


def test_installs_the_project_without_replacing_the_base_torch():
    runs = " ".join(instructions("RUN"))
    assert "pip install --no-cache-dir" in runs
    assert "-c /tmp/base-constraints.txt" in runs


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_context():
    ignored = set(DOCKERIGNORE.read_text().split())
    assert {".git", ".venv", "data/", "*.journal", ".env"} <= ignored
