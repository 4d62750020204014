"""The bounded generation queue and the per-user limits in front of it.

Admission is checked and reserved in one step under a lock, before the
interaction is deferred, so a user over a limit gets an ephemeral reply and a
request that was admitted always finds its place in the queue. Worker threads
take jobs in arrival order; the event loop only awaits their futures.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import math
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)


class LimitExceeded(Exception):
    """A request was not admitted. The message names what the user must wait for."""


class ShuttingDown(LimitExceeded):
    """The queue is closed because the bot is stopping."""


SHUTDOWN_MESSAGE = "The bot is shutting down. Try again in a minute."


class Admission:
    """A reserved place in the queue for one user's request.

    Submit exactly one job, or cancel; leaving a `with` block without
    submitting cancels, so a failed defer frees the place again.
    """

    def __init__(self, queue: "GenerationQueue", user_id: int):
        self._queue = queue
        self.user_id = user_id
        self._settled = False

    def submit(self, job: Callable[[], object]) -> concurrent.futures.Future:
        if self._settled:
            raise RuntimeError("this admission was already used")
        self._settled = True
        return self._queue._enqueue(self, job)

    def cancel(self) -> None:
        if not self._settled:
            self._settled = True
            self._queue._release(self.user_id, waiting=True)

    def __enter__(self) -> "Admission":
        return self

    def __exit__(self, *exc_info) -> None:
        self.cancel()


class GenerationQueue:
    """FIFO worker threads behind a bounded queue, a per-user limit and a per-user cooldown."""

    def __init__(
        self,
        size: int,  # requests that may wait for a worker, not counting those being generated
        max_per_user: int,  # requests one user may have waiting or running
        cooldown_seconds: float,  # from one admitted request of a user to the next; 0 turns it off
        workers: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.size = size
        self.max_per_user = max_per_user
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._lock = threading.Condition()
        self._jobs: collections.deque = collections.deque()
        self._waiting = 0  # admitted and not yet taken by a worker, including reservations not yet submitted
        self._running = 0
        self._per_user: collections.Counter = collections.Counter()
        self._last_admitted: dict[int, float] = {}
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"generation-worker-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """Requests admitted and not finished."""
        with self._lock:
            return self._waiting + self._running

    def admit(self, user_id: int) -> Admission:
        """Reserve a place for `user_id`'s next request, or raise LimitExceeded saying why not."""
        with self._lock:
            now = self._clock()
            if self._closed:
                raise ShuttingDown(SHUTDOWN_MESSAGE)

            # Cooldown first: it is the limit a user hits by their own doing.
            last = self._last_admitted.get(user_id)
            if last is not None and now - last < self.cooldown_seconds:
                wait = max(1, math.ceil(self.cooldown_seconds - (now - last)))
                raise LimitExceeded(f"You can generate again in {wait} s.")

            if self._per_user[user_id] >= self.max_per_user:
                if self.max_per_user == 1:
                    raise LimitExceeded("Your previous request is still being generated. Wait for it to finish.")
                raise LimitExceeded(
                    f"You already have {self._per_user[user_id]} requests being generated "
                    f"(the limit is {self.max_per_user}). Wait for one to finish."
                )

            if self._waiting >= self.size:
                raise LimitExceeded(
                    f"The generation queue is full ({self.size} requests waiting). Try again in a few seconds."
                )

            self._waiting += 1
            self._per_user[user_id] += 1
            self._last_admitted[user_id] = now
            self._forget_old_cooldowns(now)
            return Admission(self, user_id)

    def close(self, timeout: float | None = None) -> bool:
        """Stop admitting, let the workers finish every admitted job, then stop them.

        Returns False if jobs were still waiting or running after `timeout`
        seconds. Workers are daemon threads, so a stuck job cannot keep the
        process alive.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._closed = True
            while self._waiting or self._running:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    log.warning(
                        "Stopped waiting for the generation queue: %d waiting, %d running",
                        self._waiting,
                        self._running,
                    )
                    return False
                self._lock.wait(remaining)
            self._lock.notify_all()
        return True

    # Internals.

    def _enqueue(self, admission: Admission, job: Callable[[], object]) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            self._jobs.append((admission.user_id, job, future))
            self._lock.notify_all()
        return future

    def _release(self, user_id: int, waiting: bool) -> None:
        with self._lock:
            if waiting:
                self._waiting -= 1
            else:
                self._running -= 1
            self._per_user[user_id] -= 1
            if self._per_user[user_id] <= 0:
                del self._per_user[user_id]
            self._lock.notify_all()

    def _forget_old_cooldowns(self, now: float) -> None:
        # Keep the table small on a bot that runs for months; called with the lock held.
        if len(self._last_admitted) < 1024:
            return
        expired = [user for user, last in self._last_admitted.items() if now - last >= self.cooldown_seconds]
        for user in expired:
            del self._last_admitted[user]

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._jobs and not (self._closed and not self._waiting):
                    self._lock.wait()
                if not self._jobs:
                    return
                user_id, job, future = self._jobs.popleft()
                self._waiting -= 1
                self._running += 1

            # False means the awaiting side gave up (cancelled) before the job started.
            started = future.set_running_or_notify_cancel()
            result = error = None
            if started:
                try:
                    result = job()
                except BaseException as raised:  # handed to the awaiting coroutine, which reports it
                    error = raised

            # Free the user's place before the awaiting side hears back, so their next request is admitted.
            self._release(user_id, waiting=False)
            if started and error is not None:
                future.set_exception(error)
            elif started:
                future.set_result(result)
