"""The generation queue: FIFO workers, queue size, per-user limit, cooldown, shutdown."""

from __future__ import annotations

import threading

import pytest

from bot.limits import GenerationQueue, LimitExceeded, ShuttingDown


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def gate():
    event = threading.Event()
    yield event
    event.set()


def blocked_job(gate: threading.Event, started: threading.Event | None = None):
    def job():
        if started is not None:
            started.set()
        gate.wait(10)
        return "done"

    return job


def test_queue_runs_jobs_in_arrival_order(gate):
    queue = GenerationQueue(size=10, max_per_user=1, cooldown_seconds=0)
    order = []
    first_started = threading.Event()
    futures = [queue.admit(0).submit(blocked_job(gate, first_started))]
    first_started.wait(5)
    for user in range(1, 6):
        futures.append(queue.admit(user).submit(lambda user=user: order.append(user)))
    gate.set()
    for future in futures:
        future.result(timeout=5)
    assert order == [1, 2, 3, 4, 5]
    queue.close(5)


def test_queue_full_rejects(gate):
    queue = GenerationQueue(size=2, max_per_user=5, cooldown_seconds=0)
    started = threading.Event()
    queue.admit(1).submit(blocked_job(gate, started))
    started.wait(5)
    queue.admit(2)
    queue.admit(3)
    with pytest.raises(LimitExceeded, match="queue is full"):
        queue.admit(4)


def test_per_user_limit(gate):
    queue = GenerationQueue(size=10, max_per_user=1, cooldown_seconds=0)
    queue.admit(7).submit(blocked_job(gate))
    with pytest.raises(LimitExceeded, match="still being generated"):
        queue.admit(7)


def test_per_user_limit_frees_after_job():
    queue = GenerationQueue(size=10, max_per_user=1, cooldown_seconds=0)
    queue.admit(7).submit(lambda: None).result(timeout=5)
    assert queue.admit(7) is not None


def test_per_user_limit_counts_several(gate):
    queue = GenerationQueue(size=10, max_per_user=2, cooldown_seconds=0)
    queue.admit(7).submit(blocked_job(gate))
    queue.admit(7).submit(blocked_job(gate))
    with pytest.raises(LimitExceeded, match="limit is 2"):
        queue.admit(7)


def test_cooldown_says_how_long():
    clock = Clock()
    queue = GenerationQueue(size=10, max_per_user=5, cooldown_seconds=5, clock=clock)
    queue.admit(7).cancel()
    clock.now += 2.2
    with pytest.raises(LimitExceeded) as caught:
        queue.admit(7)
    assert str(caught.value) == "You can generate again in 3 s."


def test_cooldown_expires():
    clock = Clock()
    queue = GenerationQueue(size=10, max_per_user=5, cooldown_seconds=5, clock=clock)
    queue.admit(7).cancel()
    clock.now += 5
    assert queue.admit(7) is not None


def test_cooldown_is_per_user():
    queue = GenerationQueue(size=10, max_per_user=5, cooldown_seconds=60, clock=Clock())
    queue.admit(7)
    assert queue.admit(8) is not None


def test_admission_cancel_frees_place():
    queue = GenerationQueue(size=1, max_per_user=1, cooldown_seconds=0)
    with queue.admit(7):
        pass  # left without submitting, as when a defer fails
    assert queue.pending == 0


def test_job_error_reaches_future():
    queue = GenerationQueue(size=1, max_per_user=1, cooldown_seconds=0)

    def job():
        raise ValueError("broken export")

    future = queue.admit(7).submit(job)
    with pytest.raises(ValueError, match="broken export"):
        future.result(timeout=5)


def test_close_rejects_new_requests():
    queue = GenerationQueue(size=1, max_per_user=1, cooldown_seconds=0)
    queue.close(1)
    with pytest.raises(ShuttingDown, match="shutting down"):
        queue.admit(7)


def test_close_finishes_queued_jobs(gate):
    queue = GenerationQueue(size=5, max_per_user=5, cooldown_seconds=0)
    started = threading.Event()
    first = queue.admit(1).submit(blocked_job(gate, started))
    second = queue.admit(2).submit(lambda: "second")
    started.wait(5)
    threading.Timer(0.2, gate.set).start()
    assert queue.close(5) is True
    assert first.result(timeout=0) == "done"
    assert second.result(timeout=0) == "second"


def test_close_wait_is_bounded(gate):
    queue = GenerationQueue(size=5, max_per_user=5, cooldown_seconds=0)
    queue.admit(1).submit(blocked_job(gate))
    assert queue.close(0.2) is False
