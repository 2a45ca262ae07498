import json
from pathlib import Path

import pytest
import yaml

from hpsearch.objectives.config import TrainConfig
from hpsearch.search.cli import main


def write_config(path: Path, config: TrainConfig, **changes: object) -> Path:
    data = {**config.to_dict(), **changes}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_train_writes_config_metrics_and_curves(tmp_path: Path, cifar_dir: Path, tiny_config: TrainConfig,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "c.yaml", tiny_config)
    out = tmp_path / "out"
    code = main(["train", "--config", str(cfg), "--data-dir", str(cifar_dir), "--out", str(out),
                 "--seeds", "2", "--test"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["runs"]) == 2 and [r["config"]["seed"] for r in metrics["runs"]] == [0, 1]
    assert len(metrics["final_val_acc"]["values"]) == 2 and metrics["final_val_acc"]["std"] >= 0
    assert 0 <= metrics["test_acc"]["mean"] <= 1
    assert TrainConfig.from_yaml_file(out / "config.yaml") == tiny_config
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "final validation accuracy" in capsys.readouterr().out


def test_no_test_accuracy_without_the_flag(tmp_path: Path, cifar_dir: Path, tiny_config: TrainConfig) -> None:
    cfg = write_config(tmp_path / "c.yaml", tiny_config, epochs=1)
    assert main(["train", "--config", str(cfg), "--data-dir", str(cifar_dir), "--out", str(tmp_path / "o")]) == 0
    assert "test_acc" not in json.loads((tmp_path / "o" / "metrics.json").read_text())


@pytest.mark.slow
def test_lr_find_writes_plot_and_suggestion(tmp_path: Path, cifar_dir: Path, tiny_config: TrainConfig,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "c.yaml", tiny_config)
    out = tmp_path / "lr"
    assert main(["lr-find", "--config", str(cfg), "--data-dir", str(cifar_dir), "--out", str(out),
                 "--iterations", "30"]) == 0
    assert "LR range test steps" in capsys.readouterr().err  # steps done of total, not a spinner
    suggestion = yaml.safe_load((out / "lr-find.yaml").read_text())
    assert suggestion["lr"]["log"] is True and 0 < suggestion["lr"]["low"] < suggestion["lr"]["high"]
    assert (out / "lr-find.png").read_bytes()[:4] == b"\x89PNG"


BAD_CONFIGS = {
    "unknown key": ("lrr: 0.1\n", "unknown key 'lrr'"),
    "wrong type": ("lr: fast\n", "lr must be a number"),
    "negative lr": ("lr: -0.1\n", "lr must be > 0"),
    "unknown scheduler": ("scheduler: linear\n", "unknown scheduler 'linear'"),
    "not yaml": ("lr: [0.1\n", "not valid YAML"),
    "absent device": ("device: cuda:7\n", "not available"),
    "unknown sampling": ("sampling: oversample\n", "unknown sampling 'oversample'"),
    "unknown compile mode": ("compile: fast\n", "unknown compile 'fast'"),
    "cuda graphs on the cpu": ("compile: cudagraphs\ndevice: cpu\n", "compile: cudagraphs needs a CUDA device"),
    "unknown plateau mode": ("plateau_mode: up\n", "unknown plateau_mode 'up'"),
    "both forms of warmup": ("warmup_epochs: 1\nwarmup_fraction: 0.1\n", "both warmup_epochs and warmup_fraction"),
    "fraction above 1": ("cycle_fraction: 2.0\n", "cycle_fraction must be a fraction of the run"),
    "a plan": ("name: p\nobjective: cifar10-resnet18\nspace: {}\nstages: []\n", "is a plan (it has stages:)"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_one_line_and_exit_2(case: str, tmp_path: Path, cifar_dir: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    text, message = BAD_CONFIGS[case]
    (tmp_path / "bad.yaml").write_text(text)
    code = main(["train", "--config", str(tmp_path / "bad.yaml"), "--data-dir", str(cifar_dir),
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    if case == "absent device" and "not available" not in err:
        pytest.fail(f"expected a missing-device error, got {err!r}")
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train"], "Missing option '--config'"),
        (["train", "--config", "missing.yaml"], "does not exist"),
        (["train", "--config", "{cfg}", "--seeds", "0"], "--seeds"),
        (["train", "--config", "{cfg}", "--bogus"], "No such option"),
        (["train", "--config", "{cfg}", "--data-dir", "{empty}"], "no CIFAR-10"),
        (["train", "--config", "{cfg}", "--data-dir", "{broken}"], "cannot unpickle"),
        (["lr-find", "--config", "{cfg}", "--start-lr", "1", "--end-lr", "0.1"], "must be below"),
        (["lr-find", "--config", "{export}"], "an export of objective 'mine:train', and lr-find runs"),
        (["frobnicate"], "No such command"),
    ],
)
def test_bad_arguments_and_data_folders_exit_2(args: list[str], message: str, tmp_path: Path, cifar_dir: Path,
                                               tiny_config: TrainConfig, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.cifar_files import write_cifar

    cfg = write_config(tmp_path / "c.yaml", tiny_config)
    (tmp_path / "empty").mkdir()
    broken = write_cifar(tmp_path / "broken")
    (broken / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"junk")
    export = tmp_path / "rank-1.yaml"
    export.write_text("objective: mine:train\nconfig: {lr: 0.1}\n")
    args = [a.format(cfg=cfg, empty=tmp_path / "empty", broken=broken, export=export) for a in args]
    if "--data-dir" not in args and args[0] in ("train", "lr-find") and "{cfg}" not in args:
        args += ["--data-dir", str(cifar_dir)]
    code = main([*args, "--out", str(tmp_path / "o")] if args[0] != "frobnicate" else args)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
