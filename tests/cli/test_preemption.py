"""Stop requests (distbp.cli.preemption): SIGTERM and SIGINT become a request, a second
SIGINT aborts, the old handlers come back."""

import os
import signal

from distbp.cli.preemption import INTERRUPTED, Preemption, agreed_signal


def test_sigterm_sets_the_request_and_the_old_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with Preemption() as preemption:
        assert not preemption.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert preemption.requested and preemption.signal_name == "SIGTERM"
        os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt: a request
        assert preemption.signal_name == "SIGTERM"  # the first one counts
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_a_second_sigint_aborts():
    aborted = []
    with Preemption(abort=aborted.append) as preemption:
        os.kill(os.getpid(), signal.SIGINT)
        assert preemption.signal_name == "SIGINT" and aborted == []
        os.kill(os.getpid(), signal.SIGINT)
        assert aborted == [INTERRUPTED]


def test_the_ranks_agree_on_one_signal():
    assert agreed_signal(["", "SIGTERM", ""]) == "SIGTERM"
    assert agreed_signal(["SIGTERM", "SIGINT"]) == "SIGINT"
    assert agreed_signal(["", ""]) == ""
