"""The exact worker command line each launcher runs, read from its launch file.

An end-to-end test can run what a user's launcher would run, against a real PostgreSQL:

    argv = worker_argv("slurm")  # ["hpsearch", "worker", "cifar10-resnet18", "--devices", "all"]
    subprocess.run(argv, env={**os.environ, STORAGE_ENV: url}, check=True)

Every launcher passes the storage URL in `$HPSEARCH_STORAGE`, never in the arguments, so the
password does not show in `ps`; the caller sets it. Each launch file keeps its worker command in
one place: the compose `worker` service's `command:`, the worker Job's container `args`, and the
`hpsearch worker ...` line of the sbatch script.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
K8S_WORKER_JOB = REPO_ROOT / "docker" / "k8s" / "base" / "worker-job.yaml"
SBATCH_FILE = REPO_ROOT / "docker" / "slurm" / "hpsearch-worker.sbatch"

STORAGE_ENV = "HPSEARCH_STORAGE"
LAUNCHERS = ("compose", "k8s", "slurm")


class LaunchFileError(ValueError):
    """A launch file does not hold one worker command we can read without guessing."""


def dockerfile_instructions(dockerfile: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, rest = pending.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def image_entrypoint(dockerfile: Path = DOCKERFILE) -> list[str]:
    """The image's ENTRYPOINT, which must use the exec (JSON) form so signals reach hpsearch."""
    entrypoints = [rest for keyword, rest in dockerfile_instructions(dockerfile) if keyword == "ENTRYPOINT"]
    if not entrypoints:
        raise LaunchFileError(f"{dockerfile} has no ENTRYPOINT")
    try:
        entrypoint = json.loads(entrypoints[-1])
    except json.JSONDecodeError:
        raise LaunchFileError(
            f'{dockerfile}: ENTRYPOINT must be in exec form, e.g. ["hpsearch"]; got {entrypoints[-1]!r}'
        ) from None
    if not (isinstance(entrypoint, list) and all(isinstance(a, str) for a in entrypoint)):
        raise LaunchFileError(f"{dockerfile}: ENTRYPOINT must be a list of strings; got {entrypoint!r}")
    return entrypoint


# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}, $VAR
_SHELL_VAR = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<word>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def expand_variables(text: str, env: Mapping[str, str], *, where: str) -> str:
    """Expand shell/compose-style variables the way the launcher would, from `env` only."""

    def substitute(match: re.Match[str]) -> str:
        name = match["name"] or match["bare"]
        op, word = match["op"], match["word"]
        value = env.get(name)
        is_unset = value is None or (value == "" and op is not None and op.startswith(":"))
        if not is_unset:
            return value
        if op in (":-", "-"):
            return word
        raise LaunchFileError(f"{where}: ${{{name}}} is not set and has no default; pass it in env")

    return _SHELL_VAR.sub(substitute, text)


def compose_worker_argv(
    compose_file: Path = COMPOSE_FILE,
    service: str = "worker",
    env: Mapping[str, str] | None = None,
    dockerfile: Path = DOCKERFILE,
) -> list[str]:
    """The argv of the compose service: its entrypoint (else the image's) plus its `command:`."""
    spec = yaml.safe_load(compose_file.read_text())  # safe_load resolves the `<<` merge keys
    try:
        svc = spec["services"][service]
    except (KeyError, TypeError):
        raise LaunchFileError(f"{compose_file} has no service {service!r}") from None
    if "command" not in svc:
        raise LaunchFileError(f"{compose_file}: service {service!r} has no command")
    entrypoint = svc.get("entrypoint", image_entrypoint(dockerfile))
    argv = [*_as_argv(entrypoint), *_as_argv(svc["command"])]
    where = f"{compose_file}: services.{service}"
    # Compose interpolates ${...} from the host environment; $$ is its escape for a literal $.
    return ["$".join(expand_variables(part, env or {}, where=where) for part in a.split("$$")) for a in argv]


def k8s_worker_argv(
    manifest: Path = K8S_WORKER_JOB,
    job: str = "hpsearch-worker",
    container: str = "worker",
    dockerfile: Path = DOCKERFILE,
) -> list[str]:
    """The argv of the Job's container: its `command` (else the image's entrypoint) plus `args`."""
    docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    jobs = [d for d in docs if d.get("kind") == "Job" and d.get("metadata", {}).get("name") == job]
    if len(jobs) != 1:
        raise LaunchFileError(f"{manifest} must hold exactly one Job named {job!r}; found {len(jobs)}")
    containers = [c for c in jobs[0]["spec"]["template"]["spec"]["containers"] if c["name"] == container]
    if len(containers) != 1:
        raise LaunchFileError(f"{manifest}: Job {job!r} has no container named {container!r}")
    spec = containers[0]
    argv = [*spec.get("command", image_entrypoint(dockerfile)), *spec.get("args", [])]
    # The kubelet expands $(VAR) from the container's env; only literal values can be known here.
    literal_env = {e["name"]: e["value"] for e in spec.get("env", []) if "value" in e}
    return [_expand_k8s_refs(a, literal_env, where=f"{manifest}: container {container!r}") for a in argv]


def slurm_worker_argv(sbatch_file: Path = SBATCH_FILE, env: Mapping[str, str] | None = None) -> list[str]:
    """The argv of the script's one `hpsearch worker ...` line, its variables expanded from `env`."""
    lines = [
        line
        for line in sbatch_file.read_text().splitlines()
        if re.match(r"\s*(exec\s+)?hpsearch\s+worker\b", line)
    ]
    if len(lines) != 1:
        raise LaunchFileError(
            f"{sbatch_file} must have exactly one `hpsearch worker` line; found {len(lines)}"
        )
    words = shlex.split(lines[0], comments=True)
    if words and words[0] == "exec":
        words = words[1:]
    if words and words[-1] == "&":
        words = words[:-1]
    return [expand_variables(w, env or {}, where=str(sbatch_file)) for w in words]


_BY_LAUNCHER: dict[str, Callable[..., list[str]]] = {
    "compose": compose_worker_argv,
    "k8s": k8s_worker_argv,
    "slurm": slurm_worker_argv,
}


def worker_argv(launcher: str, **kwargs: Any) -> list[str]:
    """The worker argv of one launcher: 'compose', 'k8s' or 'slurm' (kwargs go to its reader)."""
    try:
        read = _BY_LAUNCHER[launcher]
    except KeyError:
        raise LaunchFileError(f"unknown launcher {launcher!r}; choose from {sorted(_BY_LAUNCHER)}") from None
    return read(**kwargs)


def _as_argv(value: str | list[str]) -> list[str]:
    # Compose accepts a command as a list or as one string that it splits like a shell would.
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _expand_k8s_refs(arg: str, env: Mapping[str, str], *, where: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match[1]
        if name not in env:
            raise LaunchFileError(f"{where}: $({name}) is not a literal env value of the container")
        return env[name]

    # $$(VAR) is the escape for a literal $(VAR).
    expanded = re.sub(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", substitute, arg)
    return expanded.replace("$$(", "$(")
