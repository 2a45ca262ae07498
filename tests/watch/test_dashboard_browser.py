"""`hpsearch dashboard` on a PostgreSQL campaign, looked at in headless Chromium: studies, a note, a curve."""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta
from playwright.sync_api import expect, sync_playwright

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.train import train
from hpsearch.search.record import TrialRecord
from hpsearch.search.run.notes import annotate_trial
from hpsearch.storage import optuna_internals as internals
from tests.cifar_files import write_cifar
from tests.watch.helpers import PLAN, run_campaign

pytestmark = pytest.mark.slow  # a real training run and a real browser
CHROMIUM = "/usr/bin/chromium"  # the system's; a browser is never downloaded (CI: apt-get via .ci/setup)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOT_COPY = Path("/tmp/hpsearch-dashboard.png")  # a stable place to look at the last run's page
# The CLI in a fresh interpreter (cli.py imports every command module, the watch commands included).
_CLI = "import sys; from hpsearch.search.cli import main; sys.exit(main())"
SMALL_PLAN = {**PLAN, "stages": [
    {"name": "coarse", "n_trials": 4, "overrides": {"epochs": 2}, "sampler": "random"},
    {"name": "fine", "n_trials": 3, "overrides": {"epochs": 3}, "narrow": {"top_k": 2, "margin": 0.2}},
    {"name": "final", "kind": "final", "top": 1, "seeds": 2, "overrides": {"epochs": 3}},
]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _real_trial(study: optuna.Study, data_dir: Path, artifacts: Path) -> optuna.FrozenTrial:
    """One tiny real training run recorded in the stage's study the way the worker records it."""
    config = TrainConfig(width=4, epochs=2, batch_size=32, val_fraction=0.25, device="cpu")
    trial = study.ask()
    for key, value in {"config": config.to_dict(), "worker": {"host": socket.gethostname(), "device": "cpu"},
                       "stage": "coarse"}.items():
        trial.set_user_attr(key, value)
    result = train(config, data_dir=data_dir, on_epoch=lambda r: trial.report(r.val_acc, r.epoch))
    history = [dataclasses.asdict(r) for r in result.history]
    trial.set_user_attr("history", history)
    trial.set_user_attr("outcome", {"seconds": round(result.seconds, 3), "status": result.status})
    annotate_trial(study, trial, TrialRecord.of(trial), None, artifacts)
    study.tell(trial, result.final_val_acc)
    return internals.study_storage(study).get_trial(internals.trial_id(trial))


@pytest.fixture
def dashboard(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, optuna.FrozenTrial, list[str]]]:
    storage = optuna.storages.RDBStorage(pg_url)
    artifacts = tmp_path / "artifacts"
    run_campaign(storage, artifacts, SMALL_PLAN)
    study = optuna.load_study(study_name="watch.coarse", storage=storage)
    trial = _real_trial(study, write_cifar(tmp_path / "cifar"), artifacts)
    (meta,) = get_all_artifact_meta(trial, storage=storage)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CLI, "dashboard", "--storage", pg_url, "--port", str(port),
         "--artifacts", str(artifacts)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()  # type: ignore[arg-type]
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"the dashboard exited early: {''.join(lines)}"
            try:
                urllib.request.urlopen(base + "/api/meta", timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"the dashboard never answered: {''.join(lines)}"
                time.sleep(0.2)
        yield base, trial, [storage.get_study_id_from_name(f"watch.{s}") for s in ("coarse", "fine", "final")] \
            + [meta.artifact_id]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert any(f"{base}/dashboard" in line for line in lines), lines  # it printed where to look


def test_dashboard_shows_stages_notes_and_curves(dashboard: tuple, tmp_path: Path) -> None:
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: apt-get install -y chromium (CI: .ci/setup)"
    base, trial, ids = dashboard
    coarse_id, artifact_id = ids[0], ids[-1]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(base + "/dashboard")
            for stage, study_id in zip(("coarse", "fine", "final"), ids, strict=False):
                expect(page.get_by_role("heading", name=f"{study_id}. watch.{stage}", exact=True)).to_be_visible()
            page.goto(f"{base}/dashboard/studies/{coarse_id}/trials?numbers={trial.number}")
            expect(page.get_by_text(f"Trial {trial.number} of stage coarse").first).to_be_visible()
            expect(page.get_by_text("Outcome: completed").first).to_be_visible()
            shot = tmp_path / "dashboard-trial.png"
            page.screenshot(path=str(shot))  # the trial list and its note, before anything scrolls
            shutil.copyfile(shot, SCREENSHOT_COPY)
            image = page.locator(f"img[src*='{artifact_id}']").first
            image.scroll_into_view_if_needed()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
            assert image.evaluate("img => img.naturalWidth") > 0
            page.screenshot(path=str(tmp_path / "dashboard-trial-curves.png"))  # the artifact, in view
        finally:
            browser.close()
