"""A bounded pool of worker threads where the first failure cancels the rest.

Modelled on s3transfer's futures: each task's state lives in a `TaskCoordinator` (explicit
states, moved only forward, thread-safe), the caller sees it through a `TaskFuture`, and the
`BoundedPool` runs the tasks. A failure cancels every task not started yet; running tasks are
not interrupted (a thread cannot be) but see `pool.stopping` turn true and stop after their
current page, checkpointed. Used by the backfill (segments) and the reconciler (units).

    with BoundedPool(workers, name="backfill", stop=event.is_set) as pool:
        futures = [pool.submit(task) for task in tasks]   # a task polls pool.stopping
        for future in pool.as_completed():                # on this thread, as they end
            ...
        results = pool.results()                          # in submission order, or raises

One worker runs the tasks inline, on the calling thread, one by one as `as_completed` (or
`results`) asks for them: its clients already exist and there is no thread to start.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, ThreadPoolExecutor
from enum import StrEnum
from types import TracebackType
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class TaskState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


DONE_STATES = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED})


class TaskCoordinator(Generic[T]):
    """One task's state and outcome; every transition is under one lock."""

    def __init__(self, index: int, on_done: Callable[[TaskCoordinator[T]], None]) -> None:
        self.index = index
        self._state = TaskState.QUEUED
        self._result: T | None = None
        self._exception: BaseException | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._on_done = on_done

    @property
    def state(self) -> TaskState:
        return self._state

    def set_running(self) -> bool:
        """QUEUED -> RUNNING; False when the task was cancelled first (do not run it)."""
        with self._lock:
            if self._state is not TaskState.QUEUED:
                return False
            self._state = TaskState.RUNNING
            return True

    def set_result(self, value: T) -> None:
        self._finish(TaskState.SUCCEEDED, value, None)

    def set_exception(self, exc: BaseException) -> None:
        self._finish(TaskState.FAILED, None, exc)

    def cancel(self) -> bool:
        """QUEUED -> CANCELLED; a running or finished task keeps its state."""
        with self._lock:
            if self._state is not TaskState.QUEUED:
                return False
            self._state = TaskState.CANCELLED
        self._announce()
        return True

    def _finish(self, state: TaskState, value: T | None, exc: BaseException | None) -> None:
        with self._lock:
            if self._state is not TaskState.RUNNING:
                raise RuntimeError(f"task {self.index} cannot end as {state} from {self._state}")
            self._state, self._result, self._exception = state, value, exc
        self._announce()

    def _announce(self) -> None:
        self._done.set()
        self._on_done(self)

    def wait(self) -> None:
        self._done.wait()

    def result(self) -> T:
        self.wait()
        if self._state is TaskState.CANCELLED:
            raise CancelledError(f"task {self.index} was cancelled")
        if self._exception is not None:
            raise self._exception
        return cast(T, self._result)  # SUCCEEDED: set_result gave it

    def exception(self) -> BaseException | None:
        self.wait()
        return self._exception


class TaskFuture(Generic[T]):
    """What the caller holds of a task: its state and, once done, its result."""

    def __init__(self, coordinator: TaskCoordinator[T]) -> None:
        self._coordinator = coordinator

    @property
    def index(self) -> int:
        """The task's place in submission order."""
        return self._coordinator.index

    @property
    def state(self) -> TaskState:
        return self._coordinator.state

    def done(self) -> bool:
        return self._coordinator.state in DONE_STATES

    def cancelled(self) -> bool:
        return self._coordinator.state is TaskState.CANCELLED

    def result(self) -> T:
        """The task's value; raises its exception, or CancelledError."""
        return self._coordinator.result()

    def exception(self) -> BaseException | None:
        return self._coordinator.exception()


class BoundedPool(Generic[T]):
    """Runs submitted tasks on at most `workers` threads; the first failure cancels the rest.

    `stop` (optional) is an outside reason to stop: it makes `stopping` true like a failure,
    but cancels nothing; the tasks end early on their own."""

    def __init__(
        self, workers: int, *, name: str = "pool", stop: Callable[[], bool] | None = None
    ) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self.workers = workers
        self._stop = stop
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._tasks: list[tuple[TaskCoordinator[T], Callable[[], T]]] = []
        self._finished: queue.SimpleQueue[TaskCoordinator[T]] = queue.SimpleQueue()
        self._first_failure: BaseException | None = None
        self._executor = (
            None if workers == 1 else ThreadPoolExecutor(workers, thread_name_prefix=name)
        )
        self._inline_next = 0
        self._yielded = 0

    # --- state ----------------------------------------------------------------------------
    @property
    def inline(self) -> bool:
        """One worker: tasks run on the calling thread."""
        return self._executor is None

    @property
    def stopping(self) -> bool:
        """Whether running tasks should stop after their current step."""
        return self._halt.is_set() or (self._stop is not None and self._stop())

    @property
    def failure(self) -> BaseException | None:
        """The first task failure (the one that cancelled the rest), if any."""
        return self._first_failure

    def cancel(self) -> None:
        """Cancel every task not started yet; running ones see `stopping`."""
        self._halt.set()
        with self._lock:
            pending = [c for c, _ in self._tasks]
        for coordinator in pending:
            coordinator.cancel()

    # --- running --------------------------------------------------------------------------
    def submit(self, fn: Callable[[], T]) -> TaskFuture[T]:
        with self._lock:
            coordinator: TaskCoordinator[T] = TaskCoordinator(len(self._tasks), self._finished.put)
            self._tasks.append((coordinator, fn))
        if self._halt.is_set():
            coordinator.cancel()
        elif self._executor is not None:
            self._executor.submit(self._run, coordinator, fn)
        return TaskFuture(coordinator)

    def _run(self, coordinator: TaskCoordinator[T], fn: Callable[[], T]) -> None:
        if not coordinator.set_running():
            return  # cancelled while queued
        try:
            value = fn()
        except BaseException as exc:  # a task's failure is its future's, not the thread's
            with self._lock:
                first = self._first_failure is None
                if first:
                    self._first_failure = exc
            coordinator.set_exception(exc)
            if first:
                self.cancel()
            return
        coordinator.set_result(value)

    def as_completed(self) -> Iterator[TaskFuture[T]]:
        """The future of every submitted task not yet yielded, as it ends (cancelled ones
        included), on this thread."""
        while True:
            with self._lock:
                if self._yielded >= len(self._tasks):
                    return
                self._yielded += 1
            if self._executor is None:
                self._run_inline_until_one_finishes()
            yield TaskFuture(self._finished.get())

    def _run_inline_until_one_finishes(self) -> None:
        # a cancelled task announced itself already; else run queued ones until one ends
        while self._finished.empty():
            coordinator, fn = self._tasks[self._inline_next]
            self._inline_next += 1
            self._run(coordinator, fn)

    def results(self) -> list[T]:
        """Every task's value in submission order, once all have ended; or the first failure."""
        for _ in self.as_completed():
            pass
        if self._first_failure is not None:
            raise self._first_failure
        return [c.result() for c, _ in self._tasks]

    def shutdown(self) -> None:
        """Wait for the running tasks to end (they were asked to stop, or are done)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def __enter__(self) -> BoundedPool[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            # Ctrl-C or a caller's error: let the running tasks checkpoint and stop
            self.cancel()
        self.shutdown()
