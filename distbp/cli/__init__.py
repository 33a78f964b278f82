"""The job: `python -m distbp.train` (flags and config files, the run's objects, the
training loop, run state and checkpoints, progress and metrics) and `python -m distbp.plot`."""
