"""Preemption (distbp.cli.preemption): SIGTERM becomes a request, the handler is restored."""

import os
import signal

from distbp.cli.preemption import Preemption


def test_sigterm_sets_the_request_and_the_old_handler_comes_back():
    before = signal.getsignal(signal.SIGTERM)
    with Preemption() as preemption:
        assert not preemption.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert preemption.requested
    assert signal.getsignal(signal.SIGTERM) == before
