"""The stall watchdog (distbp.dist.watchdog): a wait past the timeout aborts, with the
operation and the step named; waits within it do nothing."""

import time

from distbp.dist.watchdog import Watchdog


def test_a_stalled_wait_aborts_naming_operation_and_step(capfd):
    aborted = []
    dog = Watchdog(0.2, rank=3, abort=aborted.append)
    dog.context = "step 12"
    with dog.around("Allreduce"):
        deadline = time.monotonic() + 5
        while not aborted and time.monotonic() < deadline:
            time.sleep(0.05)
    assert aborted == [3]
    err = capfd.readouterr().err
    assert "distbp: error on rank 3: stalled" in err and "in Allreduce at step 12" in err


def test_short_waits_do_not_abort():
    aborted = []
    dog = Watchdog(0.5, rank=0, abort=aborted.append)
    for _ in range(5):
        with dog.around("Bcast"):
            time.sleep(0.05)
    time.sleep(0.6)  # nothing waits now
    assert aborted == [] and dog.waiting is None
