"""`python tests/faults.py [distbp.train flags]`: the training job with a fault installed.

DISTBP_FAULT_INJECT=RANK:STEP[:KIND] makes that rank misbehave at that global step:
raise (default), nan (NaN in its input rows), hang (sleep), kill (SIGKILL itself),
sigterm (SIGTERM itself, as Slurm does before a preemption), kill-in-checkpoint (rank 0
SIGKILLs itself between writing that step's checkpoint and renaming it), hang-in-setup
and sigterm-in-setup (while loading the dataset; STEP is ignored), full-disk-in-checkpoint
(rank 0's write of that step's checkpoint fails with ENOSPC). The hooks wrap the
data-parallel step, the checkpoint's rename and the dataset loader: production code
carries no fault.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from distbp.cli import checkpoint, job, run
from distbp.dist.launch import launcher_rank
from distbp.dist.step import DataParallel

FAULT_ENV = "DISTBP_FAULT_INJECT"
KINDS = ("raise", "nan", "hang", "kill", "sigterm", "kill-in-checkpoint", "hang-in-setup",
         "sigterm-in-setup", "full-disk-in-checkpoint")


def planned() -> tuple[int, int, str]:
    """(rank, step, kind) from the environment."""
    parts = os.environ[FAULT_ENV].split(":")
    kind = parts[2] if len(parts) > 2 and parts[2] in KINDS else "raise"
    return int(parts[0]), int(parts[1]), kind


def install() -> None:
    rank, at_step, kind = planned()
    original_step, original_publish = DataParallel.step, checkpoint.publish

    def faulty_step(self, x, y, global_count, stop=False, rows=None, step=0):
        if self.comm.rank == rank and step == at_step:
            if kind == "raise":
                raise RuntimeError(f"fault injected by {FAULT_ENV}={os.environ[FAULT_ENV]} "
                                   f"at step {at_step}")
            if kind == "nan" and len(x):
                x = np.array(x, copy=True)
                x[0, 0] = np.nan
            elif kind == "hang":
                time.sleep(3600)
            elif kind == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif kind == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
                stop = True  # the handler has run: the loop would have passed True
        return original_step(self, x, y, global_count, stop, rows, step)

    def faulty_publish(temporary: Path, target: Path) -> None:
        if rank == 0 and target.name == f"ckpt-{at_step:09d}.npz":
            if kind == "kill-in-checkpoint":
                os.kill(os.getpid(), signal.SIGKILL)
            if kind == "full-disk-in-checkpoint":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original_publish(temporary, target)

    original_load = run.load

    def faulty_load(*args, **kwargs):
        if launcher_rank() == rank and kind == "hang-in-setup":
            time.sleep(3600)
        if launcher_rank() == rank and kind == "sigterm-in-setup":
            os.kill(os.getpid(), signal.SIGTERM)
        return original_load(*args, **kwargs)

    DataParallel.step = faulty_step
    checkpoint.publish = faulty_publish
    run.load = faulty_load


if __name__ == "__main__":
    install()
    sys.exit(job.main(sys.argv[1:]))
