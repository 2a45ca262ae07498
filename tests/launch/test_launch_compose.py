"""docker-compose.yml: valid Compose, and the properties a user relies on when running it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from worker_argv import COMPOSE_FILE, REPO_ROOT

SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
HEAD_OVERRIDE = REPO_ROOT / "docker" / "compose.head.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def test_compose_files_validate_against_the_compose_schema(tool):
    result = subprocess.run(
        [tool("check-jsonschema"), "--schemafile", str(SCHEMA), str(COMPOSE_FILE), str(HEAD_OVERRIDE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_postgres_is_pinned_to_a_major_version_and_checked_with_pg_isready(services):
    postgres = services["postgres"]
    assert re.fullmatch(r"postgres:\d+(\.\d+)?", postgres["image"])
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]


def test_no_password_is_written_in_the_compose_files():
    for path in (COMPOSE_FILE, HEAD_OVERRIDE):
        text = path.read_text()
        # Every URL's password is an interpolation from .env, never text.
        for password in re.findall(r"://[^:/@\s\"']+:([^@\s\"']+)@", text):
            assert password.startswith("${POSTGRES_PASSWORD"), f"{path.name}: literal password in a URL"
        # So is every value whose key names a password or secret.
        for key, value in re.findall(r"^\s*-?\s*(\w*(?:PASSWORD|SECRET)\w*)\s*[:=]\s*(\S.*)$", text, re.M):
            assert value.startswith("${"), f"{path.name}: {key} is written out"


def test_storage_url_is_assembled_from_env_and_required(services):
    url = services["worker"]["environment"]["HPSEARCH_STORAGE"]
    assert url.startswith("postgresql+psycopg2://")
    # `:?` makes compose stop with a message instead of starting with an empty password.
    assert "${POSTGRES_PASSWORD:?" in url
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_dashboard_is_published_on_loopback_only(services):
    dashboard = services["dashboard"]
    assert dashboard["ports"] == ["127.0.0.1:8080:8080"]
    assert dashboard["command"][:1] == ["dashboard"]


def test_only_the_head_override_publishes_postgres(services):
    assert "ports" not in services["postgres"]
    head = yaml.safe_load(HEAD_OVERRIDE.read_text())
    assert head["services"]["postgres"]["ports"][0].endswith(":5432")


def test_worker_reserves_gpus_and_waits_for_a_healthy_database_and_the_campaign(services):
    worker = services["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert [(d["driver"], d["capabilities"]) for d in devices] == [("nvidia", ["gpu"])]
    assert worker["restart"].startswith("on-failure")
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert worker["depends_on"]["init"]["condition"] == "service_completed_successfully"


def test_worker_can_be_scaled(services):
    # --scale fails on a fixed container name or a published host port.
    worker = services["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


def test_worker_has_time_to_hand_its_trial_back(services):
    grace = services["worker"]["stop_grace_period"]
    amount, unit = re.fullmatch(r"(\d+)([sm])", grace).groups()
    assert int(amount) * {"s": 1, "m": 60}[unit] >= 60


def test_worker_reads_data_read_only_and_shares_artifacts(services):
    volumes = services["worker"]["volumes"]
    data = next(v for v in volumes if isinstance(v, dict) and v["target"] == "/data")
    assert data["read_only"] is True
    assert "artifacts:/artifacts" in volumes
    assert "artifacts:/artifacts" in services["dashboard"]["volumes"]


def test_init_writes_the_example_campaign_once(services):
    init = services["init"]
    assert init["command"] == ["init", "examples/cifar10-resnet18.yaml"]
    assert init["restart"] == "no"
    assert init["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_interpolated_variable_is_documented_in_env_example():
    documented = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    for path in (COMPOSE_FILE, HEAD_OVERRIDE):
        used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", path.read_text()))
        assert used <= documented, f"{path.name} uses {sorted(used - documented)} without .env.example"


def test_env_example_holds_no_password():
    assert re.search(r"^POSTGRES_PASSWORD=$", ENV_EXAMPLE.read_text(), re.M)


def test_env_file_never_enters_the_image():
    ignored = DOCKERIGNORE.read_text().split()
    assert ".env" in ignored
