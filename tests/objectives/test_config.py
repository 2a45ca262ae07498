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
    ],
)
def test_bad_values_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        TrainConfig.from_dict(data)
    assert "\n" not in str(info.value)
