"""A worker that claims one enqueued trial, keeps it alive with a Heartbeat, and waits to be killed.

Run by the recovery tests: `python heartbeat_child.py STUDY INTERVAL` with the storage in $HPSEARCH_STORAGE.
"""

import sys
import time

from optuna.trial import TrialState

from hpsearch.storage import Heartbeat, open_storage
from hpsearch.storage import optuna_internals as internals


def main() -> None:
    """Claim the first WAITING trial of the study, print its id, then beat until killed."""
    study_name, interval = sys.argv[1], float(sys.argv[2])
    storage = open_storage()
    study_id = storage.get_study_id_from_name(study_name)
    waiting = storage.get_all_trials(study_id, states=(TrialState.WAITING,))
    trial_id = next(
        internals.trial_id(t) for t in waiting
        if storage.set_trial_state_values(internals.trial_id(t), TrialState.RUNNING)
    )
    with Heartbeat(storage, trial_id, interval):
        sys.stdout.write(f"{trial_id}\n")
        sys.stdout.flush()
        time.sleep(600)


if __name__ == "__main__":
    main()
