"""Running a campaign: the campaign's record in the storage, workers, one trial's run, checkpoints, cost."""
