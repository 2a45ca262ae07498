from pathlib import Path

import optuna
import optuna_dashboard
import pytest
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta
from optuna.trial import TrialState

from hpsearch.objectives.result import EpochRecord
from hpsearch.search.plan.plan import Plan
from hpsearch.search.plan.space import space_from_json
from hpsearch.search.record import TrialRecord
from hpsearch.search.run.notes import (
    annotate_trial,
    note_chunks,
    note_ver_key,
    save_first_note,
    upload_curves,
    write_stage_note,
    write_trial_note,
)
from hpsearch.storage import open_storage
from hpsearch.storage import optuna_internals as internals
from tests.watch.conftest import Campaign
from tests.watch.helpers import PLAN, journal


def test_trial_notes_and_curves_land_in_the_storage(campaign: Campaign) -> None:
    storage = campaign.storage
    study = optuna.load_study(study_name="watch.coarse", storage=storage)
    trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(trials) == 8
    for t in trials:
        note = optuna_dashboard.get_note(optuna.Trial(study, internals.trial_id(t)))
        assert f"## Trial {t.number} of stage coarse" in note
        assert "| lr |" in note and "searched" in note and "| epochs | 3 | fidelity |" in note
        assert f"`{t.user_attrs['worker']['host']}`" in note and "`cpu`" in note
        # the searched params come before the fidelity keys, which come before the rest that is set
        assert note.index("| lr |") < note.index("| epochs |") < note.index("| val_fraction | 0.25 | set |")
        assert "| scheduler |" not in note  # left at its default: not repeated in the note
        if t.state == TrialState.PRUNED:
            assert t.user_attrs["pruned_reason"] in note
        metas = get_all_artifact_meta(t, storage=storage)
        assert [m.filename for m in metas] == [f"curves-trial-{t.number}.png"]
        path = campaign.artifacts / metas[0].artifact_id
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert metas[0].mimetype == "image/png"
    assert any(t.state == TrialState.PRUNED for t in trials), "the median pruner should have stopped a trial"


def test_stage_note_shows_the_space_beside_the_parents(campaign: Campaign) -> None:
    storage = campaign.storage
    fine = optuna.load_study(study_name="watch.fine", storage=storage)
    note = optuna_dashboard.get_note(fine)
    assert note.startswith("## Stage fine (search)")
    for fact in ("| budget | 5 trials |", "| fidelity overrides | epochs=4 |", "| sampler | name=tpe",
                 "| pruner | name=none", "| narrowing rule | top_k=3", "| carry | 1 best config"):
        assert fact in note
    assert "| param | parent | this stage | narrowing |" in note
    assert "| lr | [0.001, 3] log |" in note  # the parent's interval, then the narrowed one
    lr_row = next(line for line in note.splitlines() if line.startswith("| lr |"))
    assert lr_row.endswith(("| narrowed |", "| kept |", "re-opened below) |", "re-opened above) |")), lr_row
    assert "| optimizer | {sgd, adamw} |" in note
    coarse = optuna.load_study(study_name="watch.coarse", storage=storage)
    assert "| lr | — | [0.001, 3] log |" in optuna_dashboard.get_note(coarse)


def test_notes_accept_a_live_trial_and_rewrite_in_place(tmp_path: Path) -> None:
    storage = journal(tmp_path / "j.journal")
    study = optuna.create_study(study_name="x.s", storage=storage, direction="maximize")
    trial = study.ask()
    trial.set_user_attr("config", {"lr": 0.1, "epochs": 2})
    write_trial_note(study, trial, None)
    history = [EpochRecord(epoch=e, train_loss=2.0 - e, train_acc=0.2 * e, val_loss=2.1 - e, val_acc=0.2 * e,
                           val_bacc=0.2 * e, lr=0.1, seconds=0.1) for e in (1, 2)]
    record = TrialRecord.of(trial)
    record.history = history
    annotate_trial(study, trial, record, "diverged: loss is nan at epoch 1", tmp_path / "a")
    assert "diverged: loss is nan at epoch 1" in optuna_dashboard.get_note(trial)
    (meta,) = get_all_artifact_meta(trial, storage=storage)
    FileSystemArtifactStore(str(tmp_path / "a")).open_reader(meta.artifact_id).close()
    study.tell(trial, 0.1)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):  # why the hook runs before `tell`
        upload_curves(study, study.trials[0], history, tmp_path / "a")
    plan = Plan.from_dict(PLAN)
    write_stage_note(study, plan.stages[2], None, space_from_json(study.user_attrs.get("space")
                                                                   or _space_json(plan)))
    assert "top 2 config(s) x 2 seed(s)" in optuna_dashboard.get_note(study)


def _space_json(plan: Plan) -> dict:
    from hpsearch.search.plan.space import space_to_json

    return space_to_json(plan.space)


def test_the_first_note_is_written_in_optuna_dashboards_format(tmp_path: Path) -> None:
    """notes.py writes optuna-dashboard's note format by hand: an upgrade that changes it fails here, by name."""
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{tmp_path / 'n.journal'}"))
    trial = study.ask()
    trial_id = internals.trial_id(trial)
    body = "# a note\n" + "x" * 5000  # longer than one attribute holds: several chunks
    assert note_chunks(body, trial_id) == internals.dashboard_note_chunks(body, trial_id), \
        "optuna_dashboard._note.split_body"
    assert note_ver_key(trial_id) == internals.dashboard_note_ver_key(trial_id), "optuna_dashboard._note.note_ver_key"
    save_first_note(study, trial_id, body)
    assert optuna_dashboard.get_note(trial) == body, "optuna_dashboard._note's storage format changed"
