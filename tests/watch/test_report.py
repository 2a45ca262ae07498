import base64
import io
import json
import re
from pathlib import Path

import optuna
import pytest
from PIL import Image

from hpsearch.search.watch import report_plots
from hpsearch.search.watch.report import write_report
from tests.watch.conftest import Campaign

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_report_is_one_offline_file_naming_every_stage(campaign: Campaign, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    (runs / "rank-1").mkdir(parents=True)
    (runs / "rank-1" / "metrics.json").write_text(json.dumps(
        {"final_val_acc": {"mean": 0.61, "std": 0.01, "values": [0.6, 0.62]},
         "test_acc": {"mean": 0.5925, "std": 0.0, "values": [0.5925]}}))
    (runs / "no-test").mkdir()
    (runs / "no-test" / "metrics.json").write_text(json.dumps({"final_val_acc": {"mean": 0.7, "values": [0.7]}}))
    command = f"hpsearch report watch --out {tmp_path / 'out'} --storage {campaign.path}"
    path = write_report(campaign.storage, "watch", tmp_path / "out", command, runs)
    assert path == tmp_path / "out" / "watch-report.html"
    text = path.read_text()
    for stage in ("coarse", "fine", "final"):
        assert f"<h2>Stage {stage} (" in text
    assert command in text
    for title in ("Search space", "Optimization history", "Parameter importances", "Learning rate against momentum",
                  "Best trials: train and validation curves", "Spread over seeds"):
        assert title in text
    assert "0.5925" in text and "no-test" not in text  # test accuracy only where a run recorded it
    # The fine stage says what narrowing did to each param; the coarse stage had nothing to narrow from.
    assert text.count("<p>Narrowing from the previous stage: ") == 1
    assert re.search(r"Narrowing from the previous stage: lr (kept|narrowed|moved|re-opened|widened)", text)
    # offline: nothing is fetched, every image is inline and decodes as a PNG
    assert not re.search(r"""(src|href)=['"](https?:|//)""", text)
    payloads = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)
    assert len(payloads) >= 3 * 4  # spaces, history, lr-momentum and curves per stage, at least
    for payload in payloads:
        data = base64.b64decode(payload, validate=True)
        assert data[:8] == PNG
        with Image.open(io.BytesIO(data)) as image:
            image.verify()


def test_importances_are_explained_not_drawn_when_too_few_trials() -> None:
    study = optuna.create_study(direction="maximize")
    for lr in (0.01, 0.1):
        study.enqueue_trial({"lr": lr})
        study.optimize(lambda t: t.suggest_float("lr", 1e-3, 1.0, log=True), n_trials=1)
    figure, why_not = report_plots.param_importances(study)
    assert figure is None and "too few completed trials (2)" in why_not
