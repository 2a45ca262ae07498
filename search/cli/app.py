"""The `hpsearch` click group; each command module adds its commands to it, and `cli.main` runs it."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="hpsearch")
def app() -> None:
    """Coarse-to-fine hyperparameter search on Optuna: ResNet-18 on CIFAR-10, or your own objective."""
