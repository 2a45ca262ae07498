"""What a command inside the hpsearch image sees: the image's environment, working directory and volumes,
and where a command line keeps its artifacts there; `ContainerDirs` maps those paths to host folders so
a test can run a launcher's command as its container would, with the shared volumes shared."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from worker_argv import DOCKERFILE, dockerfile_instructions

ARTIFACTS_ENV = "HPSEARCH_ARTIFACTS_DIR"


def image_env(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """The variables the image's ENV instructions set (KEY=VALUE form), later ones winning."""
    env: dict[str, str] = {}
    for keyword, rest in dockerfile_instructions(dockerfile):
        if keyword == "ENV":
            env.update(word.split("=", 1) for word in shlex.split(rest) if "=" in word)
    return env


def image_workdir(dockerfile: Path = DOCKERFILE) -> str:
    """The working directory a container of the image starts in."""
    workdirs = [rest for keyword, rest in dockerfile_instructions(dockerfile) if keyword == "WORKDIR"]
    return workdirs[-1] if workdirs else "/"


def artifacts_path(argv: list[str], env: Mapping[str, str], workdir: str) -> str:
    """Where an hpsearch command keeps artifacts: --artifacts, else $HPSEARCH_ARTIFACTS_DIR, else ./artifacts."""
    given = argv[argv.index("--artifacts") + 1] if "--artifacts" in argv else env.get(ARTIFACTS_ENV) or "artifacts"
    return str(PurePosixPath(workdir) / given)  # an absolute path replaces the working directory


def under(path: str, folder: str) -> bool:
    """Whether container path `path` lies in `folder` (or is it)."""
    return PurePosixPath(path) == PurePosixPath(folder) or PurePosixPath(folder) in PurePosixPath(path).parents


class ContainerDirs:
    """Host folders standing in for one container's file system: the mounted volumes are shared by every
    container of the test, everything else (the working directory) is the container's own."""

    def __init__(self, host_root: Path, own: str, volumes: Mapping[str, Path]) -> None:
        self.root = host_root / own
        self.volumes = dict(volumes)

    def host(self, path: str) -> str:
        """The host folder that a container path lands in."""
        for target, folder in self.volumes.items():
            if under(path, target):
                return str(folder / PurePosixPath(path).relative_to(target))
        return str(self.root / PurePosixPath(path).relative_to("/"))

    def translate(self, value: str) -> str:
        """An absolute container path becomes its host folder; anything else stays as it is."""
        return self.host(value) if value.startswith("/") else value

    def env(self, *layers: Mapping[str, str]) -> dict[str, str]:
        """This process's environment without hpsearch's settings, then `layers` in order, paths mapped."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HPSEARCH_")}
        for layer in layers:
            env.update({k: self.translate(v) for k, v in layer.items()})
        return env
