"""Each private name of Optuna and optuna-dashboard that `storage/optuna_internals.py` touches still exists and
behaves as hpsearch relies on: an Optuna (or optuna-dashboard) upgrade that renames or changes one fails here,
naming it, before a worker meets it. Real studies on a journal file; the SQLAlchemy models on PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from hpsearch.storage import open_storage
from hpsearch.storage import optuna_internals as internals
from hpsearch.storage.experimental import using_experimental_optuna


def _journal_study(tmp_path: Path, name: str = "s") -> optuna.Study:
    return optuna.create_study(study_name=name, storage=open_storage(f"journal:{tmp_path / 'j.journal'}"))


def test_trial_id_of_a_trial_and_of_its_frozen_copy(tmp_path: Path) -> None:
    study = _journal_study(tmp_path)
    storage = internals.study_storage(study)
    study.enqueue_trial({"x": 1.0})
    study.enqueue_trial({"x": 2.0})
    for frozen in study.get_trials(deepcopy=False):
        expected = storage.get_trial_id_from_study_id_trial_number(internals.study_id(study), frozen.number)
        assert internals.trial_id(frozen) == expected, "FrozenTrial._trial_id is not the storage's trial id"
        live = optuna.Trial(study, expected)
        assert internals.trial_id(live) == expected, "Trial._trial_id is not the storage's trial id"
        assert storage.get_trial(internals.trial_id(frozen)).number == frozen.number


def test_study_id_and_storage(tmp_path: Path) -> None:
    storage = open_storage(f"journal:{tmp_path / 'j.journal'}")
    optuna.create_study(study_name="first", storage=storage)
    study = optuna.create_study(study_name="second", storage=storage)
    assert internals.study_storage(study) is storage, "Study._storage is not the storage the study was given"
    assert internals.study_id(study) == storage.get_study_id_from_name("second"), "Study._study_id changed"


def test_cached_frozen_trial_is_the_trials_own_copy(tmp_path: Path) -> None:
    study = _journal_study(tmp_path)
    study.enqueue_trial({"x": 1.0})
    [waiting] = study.get_trials(deepcopy=False)
    storage = internals.study_storage(study)
    storage.set_trial_system_attr(internals.trial_id(waiting), "hpsearch:overrides", {"seed": 3})
    assert storage.set_trial_state_values(internals.trial_id(waiting), TrialState.RUNNING)
    trial = optuna.Trial(study, internals.trial_id(waiting))
    cached = internals.cached_frozen_trial(trial)
    assert isinstance(cached, FrozenTrial), "Trial._cached_frozen_trial is gone or no longer a FrozenTrial"
    # What the worker reads from it without a storage read: the slot's overrides and enqueue's fixed params.
    assert cached.system_attrs["hpsearch:overrides"] == {"seed": 3}
    assert cached.system_attrs["fixed_params"] == {"x": 1.0}
    # What the worker writes into it after a batched write: Trial's public readers see it.
    cached.user_attrs.update({"worker": {"host": "h"}})
    assert trial.user_attrs == {"worker": {"host": "h"}}, "Trial.user_attrs no longer reads its cached copy"
    trial.set_user_attr("seen", 1)
    assert internals.cached_frozen_trial(trial).user_attrs["seen"] == 1


class _Recording(optuna.samplers.RandomSampler):
    """A sampler that records what `before_trial` and `after_trial` saw."""

    def __init__(self) -> None:
        super().__init__(seed=0)
        self.seen: list[tuple] = []

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.seen.append(("before", trial.number, trial.state))

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: list | None) -> None:
        self.seen.append(("after", trial.number, state, values, repr(trial.intermediate_values)))


def _tell_both_ways(tmp_path: Path, value: float | None, state: TrialState | None,
                    reports: tuple[float, ...]) -> list[tuple]:
    """The stored outcome and what the sampler saw, for `Study.tell` and for `tell_from_copy`."""
    outcomes = []
    for name in ("public", "copy"):
        sampler = _Recording()
        study = optuna.create_study(study_name=name, storage=open_storage(f"journal:{tmp_path / name}.journal"),
                                    sampler=sampler)
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        for step, v in enumerate(reports):
            trial.report(v, step)
        if name == "public":
            study.tell(trial, value, state=state)
        else:
            internals.tell_from_copy(study, trial, value, state)
        [t] = study.get_trials()
        outcomes.append((t.state, t.values, t.params, sampler.seen[-1]))
    return outcomes


@pytest.mark.filterwarnings("ignore:The value nan is not acceptable")
@pytest.mark.parametrize(("value", "state", "reports"), [
    (0.5, None, ()), (0.5, TrialState.COMPLETE, (0.1,)), (float("nan"), None, ()), (None, TrialState.FAIL, (0.2,)),
    (None, TrialState.PRUNED, (0.1, 0.25)), (None, TrialState.PRUNED, ()), (None, TrialState.PRUNED, (float("nan"),)),
])
def test_tell_from_copy_tells_as_study_tell_does(tmp_path: Path, value: float | None, state: TrialState | None,
                                                 reports: tuple[float, ...]) -> None:
    public, ours = _tell_both_ways(tmp_path, value, state, reports)
    assert ours == public, "optuna.study._tell no longer tells as tell_from_copy does: compare the two again"


def test_tell_from_copy_is_refused_for_a_finished_trial(tmp_path: Path) -> None:
    study = _journal_study(tmp_path)
    trial = study.ask()
    internals.study_storage(study).set_trial_state_values(internals.trial_id(trial), TrialState.FAIL)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        internals.tell_from_copy(study, trial, 0.5)
    with pytest.raises(ValueError, match="COMPLETE"):
        internals.tell_from_copy(study, study.ask(), None, TrialState.COMPLETE)


def test_trial_from_claimed_copy_is_the_trial_optuna_builds(tmp_path: Path) -> None:
    sampler = _Recording()
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{tmp_path / 'j.journal'}"),
                                sampler=sampler)
    storage = internals.study_storage(study)
    study.enqueue_trial({"x": 0.25}, user_attrs={"retry_of": {"trial": 0}})
    study.enqueue_trial({"x": 0.75})
    first, second = study.get_trials(deepcopy=False)
    for t in (first, second):
        assert storage.set_trial_state_values(internals.trial_id(t), TrialState.RUNNING)
    ours, optunas = internals.trial_from_claimed_copy(study, first), optuna.Trial(study, internals.trial_id(second))
    assert set(vars(ours)) == set(vars(optunas)), "Trial.__init__ sets other attributes than trial_from_claimed_copy"
    stored = storage.get_trial(internals.trial_id(first))
    cached = internals.cached_frozen_trial(ours)
    assert cached.state == TrialState.RUNNING and cached.datetime_start is not None
    assert (cached.number, cached.system_attrs, cached.user_attrs, cached.params) == \
        (stored.number, stored.system_attrs, stored.user_attrs, stored.params)
    assert sampler.seen == [("before", 0, TrialState.RUNNING), ("before", 1, TrialState.RUNNING)]
    assert ours.suggest_float("x", 0, 1) == 0.25  # enqueue's fixed params, as in optuna.Trial
    assert first.state == TrialState.WAITING, "the copy read before the claim is left as it was"


def test_backend_of_unwraps_optunas_cache(tmp_path: Path, pg_url: str) -> None:
    journal = open_storage(f"journal:{tmp_path / 'j.journal'}")
    assert internals.backend_of(journal) is journal
    rdb = RDBStorage(pg_url)
    study = optuna.create_study(study_name="s", storage=rdb)
    wrapped = internals.study_storage(study)
    assert wrapped is not rdb, "Optuna no longer wraps an RDBStorage in its cache: backend_of may be dropped"
    assert internals.backend_of(wrapped) is rdb, "optuna.storages._CachedStorage._backend changed"


def test_rdb_models_match_the_tables_optuna_writes(pg_url: str) -> None:
    storage = open_storage(pg_url)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = optuna.Trial(study, storage.create_new_trial(internals.study_id(study)))  # claimed, as workers do
    trial.suggest_float("x", 0, 1)
    trial.set_user_attr("u", 1)
    storage.set_trial_system_attr(internals.trial_id(trial), "sys", 2)
    study.set_user_attr("su", 3)
    storage.set_study_system_attr(internals.study_id(study), "ss", 4)
    internals.backend_of(storage).record_heartbeat(internals.trial_id(trial))
    m = internals.rdb_models
    tid, sid = internals.trial_id(trial), internals.study_id(study)
    with internals.backend_of(storage).engine.connect() as c:
        def one(query: sqlalchemy.Select) -> object:
            return c.execute(query).scalar_one()

        assert one(sqlalchemy.select(m.StudyModel.study_id).where(m.StudyModel.study_id == sid)) == sid
        assert one(sqlalchemy.select(m.TrialModel.state).where(m.TrialModel.trial_id == tid)) == TrialState.RUNNING
        assert one(sqlalchemy.select(m.TrialModel.number).where(m.TrialModel.study_id == sid)) == 0
        for model, owner, owner_id, key, value in (
            (m.TrialUserAttributeModel, "trial_id", tid, "u", "1"),
            (m.TrialSystemAttributeModel, "trial_id", tid, "sys", "2"),
            (m.StudySystemAttributeModel, "study_id", sid, "ss", "4"),
        ):
            table = model.__table__
            found = one(sqlalchemy.select(table.c.value_json).where(table.c[owner] == owner_id, table.c.key == key))
            assert found == value, f"{model.__name__} no longer holds JSON values by ({owner}, key)"
        param = m.TrialParamModel.__table__
        assert one(sqlalchemy.select(param.c.param_name).where(param.c.trial_id == tid)) == "x"
        assert {"param_value", "distribution_json"} <= set(param.c.keys())
        beat = m.TrialHeartbeatModel.__table__
        assert one(sqlalchemy.select(sqlalchemy.func.count()).where(beat.c.trial_id == tid)) == 1
        assert issubclass(m.TrialModel, m.BaseModel)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_qmc_logs_its_conditional_space_notice_under_the_name_the_worker_filters(tmp_path: Path) -> None:
    with using_experimental_optuna():
        sampler = optuna.samplers.QMCSampler(seed=0)
    study = optuna.create_study(study_name="q", storage=open_storage(f"journal:{tmp_path / 'j.journal'}"),
                                sampler=sampler)
    first, second = study.ask(), study.ask()  # both left RUNNING: the pending trials QMC infers its space from
    first.suggest_float("x", 0, 1)
    second.suggest_float("x", 0, 1)
    second.suggest_float("momentum", 0, 1)  # a conditional param: only some trials have it
    handler = _Records()
    logger = logging.getLogger(internals.QMC_LOGGER)
    logger.addHandler(handler)
    try:
        study.ask().suggest_float("x", 0, 1)  # the relative space is inferred at a trial's first suggest
    finally:
        logger.removeHandler(handler)
    assert any(r.name == internals.QMC_LOGGER and internals.QMC_CONDITIONAL_NOTICE in r.getMessage()
               for r in handler.records), (
        f"QMCSampler no longer logs {internals.QMC_CONDITIONAL_NOTICE!r} under {internals.QMC_LOGGER!r}: "
        "update the names in storage/optuna_internals.py")


class _CountingLock(internals.BaseJournalFileLock):
    def __init__(self) -> None:
        self.held, self.appends = False, 0

    def acquire(self) -> bool:
        assert not self.held
        self.held = True
        return True

    def release(self) -> None:
        assert self.held
        self.held, self.appends = False, self.appends + 1


def test_the_journal_backend_takes_the_given_lock_around_each_append(tmp_path: Path) -> None:
    lock = _CountingLock()
    backend = optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.journal"), lock_obj=lock)
    study = optuna.create_study(study_name="s", storage=optuna.storages.journal.JournalStorage(backend))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert lock.appends >= 3 and not lock.held, (
        "JournalFileBackend no longer takes its lock_obj (a BaseJournalFileLock) around each append: "
        "update storage/stores/journal_lock.py and storage/optuna_internals.py")


def test_prepare_brackets_sets_up_a_hyperband_pruner_before_its_first_prune() -> None:
    pruner = optuna.pruners.HyperbandPruner(min_resource=2, max_resource="auto", reduction_factor=3)
    study = optuna.create_study(pruner=pruner)
    assert internals.prepare_brackets(pruner, study) is False  # auto: no finished trial to size it from yet
    trial = study.ask()
    for step in range(1, 19):
        trial.report(0.5, step)
    study.tell(trial, 0.5)
    assert internals.prepare_brackets(pruner, study) is True
    assert internals.prepare_brackets(pruner, study) is True  # once set up, left as it is
    fixed = optuna.pruners.HyperbandPruner(min_resource=2, max_resource=18, reduction_factor=3)
    assert internals.prepare_brackets(fixed, optuna.create_study(pruner=fixed)) is True  # sized by its options
