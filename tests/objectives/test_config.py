from pathlib import Path

import pytest

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.errors import ConfigError


def test_yaml_round_trip(tmp_path: Path) -> None:
    config = TrainConfig(lr=0.3, classes=(1, 4), scheduler="plateau", cutout=8)
    path = tmp_path / "c.yaml"
    path.write_text(config.to_yaml())
    assert TrainConfig.from_yaml_file(path) == config


def test_an_export_with_a_config_section_reads_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "export.yaml"
    path.write_text("config:\n  lr: 0.2\nprovenance:\n  torch: x\n")
    assert TrainConfig.from_yaml_file(path).lr == 0.2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"lrr": 0.1}, "unknown key 'lrr'"),
        ({"lr": "fast"}, "lr must be a number"),
        ({"lr": -1}, "lr must be > 0"),
        ({"epochs": 1.5}, "epochs must be an integer"),
        ({"scheduler": "linear"}, "unknown scheduler 'linear'; choose from"),
        ({"optimizer": "lion"}, "unknown optimizer 'lion'"),
        ({"classes": [1]}, "at least 2 classes"),
        ({"device": "gpu"}, "device must be auto, cpu, cuda or cuda:N"),
        ({"nesterov": "yes"}, "nesterov must be true or false"),
        ({"sampling": "oversample"}, "unknown sampling 'oversample'; choose from"),
        ({"compile": "max-autotune"}, "unknown compile 'max-autotune'; choose from"),
        ({"plateau_mode": "maximum"}, "unknown plateau_mode 'maximum'"),
        ({"warmup_fraction": 1.5}, r"warmup_fraction must be a fraction of the run in \[0, 1\]"),
        ({"step_fraction": 0}, r"step_fraction must be a fraction of the run in \(0, 1\]"),
        ({"cycle_fraction": "half"}, "cycle_fraction must be a number"),
        ({"warmup_epochs": 2, "warmup_fraction": 0.1}, "both warmup_epochs and warmup_fraction are set"),
        ({"step_epochs": 3, "step_fraction": 0.25}, "both step_epochs and step_fraction are set"),
        ({"plateau_patience": 2, "plateau_patience_fraction": 0.1}, "give the knob in epochs or as a fraction"),
    ],
)
def test_bad_values_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        TrainConfig.from_dict(data)
    assert "\n" not in str(info.value)


def test_new_knobs_round_trip_and_default_to_todays_behaviour(tmp_path: Path) -> None:
    config = TrainConfig(sampling="sqrt", compile="off", plateau_mode="min", warmup_fraction=0.05,
                         cycle_fraction=0.25)
    path = tmp_path / "c.yaml"
    path.write_text(config.to_yaml())
    assert TrainConfig.from_yaml_file(path) == config
    default = TrainConfig()
    assert (default.sampling, default.compile, default.plateau_mode) == ("uniform", "auto", "max")
    assert default.warmup_fraction is None and default.step_fraction is None
