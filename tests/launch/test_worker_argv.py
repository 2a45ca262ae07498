"""The argv-extraction helper reads the one worker command from each launch file."""

from __future__ import annotations

import pytest
from worker_argv import (
    LAUNCHERS,
    LaunchFileError,
    compose_worker_argv,
    image_entrypoint,
    k8s_worker_argv,
    slurm_worker_argv,
    worker_argv,
)

EXPECTED = ["hpsearch", "worker", "cifar10-resnet18", "--devices", "all", "--wait-for-storage", "300",
            "--wait-for-campaign", "600", "--per-device", "1"]


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_every_launcher_runs_the_same_worker_command(launcher):
    assert worker_argv(launcher) == EXPECTED


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_no_launcher_puts_the_storage_url_in_the_arguments(launcher):
    # The URL carries the password: it travels in $HPSEARCH_STORAGE, where `ps` does not show it.
    assert not any(a.startswith("--storage") or "://" in a for a in worker_argv(launcher))


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_every_launcher_waits_a_bounded_time_for_its_database_and_campaign(launcher):
    # Fleets start with their database and their init: exit 2 at once would crash-loop them.
    argv = worker_argv(launcher)
    for option in ("--wait-for-storage", "--wait-for-campaign"):
        assert 60 <= float(argv[argv.index(option) + 1]) <= 3600, option


def test_image_entrypoint_is_hpsearch():
    assert image_entrypoint() == ["hpsearch"]


def test_slurm_campaign_follows_the_environment():
    assert slurm_worker_argv(env={"HPSEARCH_CAMPAIGN": "other"})[2] == "other"


def test_processes_per_gpu_follow_the_environment():
    assert slurm_worker_argv(env={"HPSEARCH_PER_DEVICE": "4"})[-2:] == ["--per-device", "4"]
    assert compose_worker_argv(env={"HPSEARCH_PER_DEVICE": "2"})[-2:] == ["--per-device", "2"]


def test_slurm_line_variations_are_read(tmp_path):
    script = tmp_path / "w.sbatch"
    script.write_text('#!/bin/bash\nexec hpsearch worker "$NAME" --max-trials 3  # one\n')
    assert slurm_worker_argv(script, env={"NAME": "c"}) == ["hpsearch", "worker", "c", "--max-trials", "3"]


def test_unset_variable_without_default_is_an_error(tmp_path):
    script = tmp_path / "w.sbatch"
    script.write_text("hpsearch worker ${NAME} &\n")
    with pytest.raises(LaunchFileError, match="NAME"):
        slurm_worker_argv(script)


def test_two_worker_lines_are_ambiguous(tmp_path):
    script = tmp_path / "w.sbatch"
    script.write_text("hpsearch worker a\nhpsearch worker b\n")
    with pytest.raises(LaunchFileError, match="exactly one"):
        slurm_worker_argv(script)


def test_compose_interpolation_and_escapes(tmp_path):
    compose = tmp_path / "compose.yml"
    compose.write_text(
        "services:\n  worker:\n    entrypoint: [hpsearch]\n    command: worker ${CAMPAIGN:-x} --tag $$HOME\n"
    )
    assert compose_worker_argv(compose, env={"CAMPAIGN": "c"}) == [
        "hpsearch",
        "worker",
        "c",
        "--tag",
        "$HOME",
    ]
    assert compose_worker_argv(compose)[2] == "x"


def test_k8s_command_and_env_references(tmp_path):
    manifest = tmp_path / "job.yaml"
    manifest.write_text(
        "kind: Job\nmetadata: {name: hpsearch-worker}\nspec:\n  template:\n    spec:\n      containers:\n"
        "        - name: worker\n          command: [hpsearch]\n          args: [worker, $(CAMPAIGN)]\n"
        "          env: [{name: CAMPAIGN, value: c}]\n"
    )
    assert k8s_worker_argv(manifest) == ["hpsearch", "worker", "c"]


def test_unknown_launcher_names_the_choices():
    with pytest.raises(LaunchFileError, match="compose"):
        worker_argv("nomad")
