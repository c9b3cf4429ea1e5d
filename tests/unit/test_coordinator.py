"""The bounded pool: the first failure cancels the rest, explicit states, results in order."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError

import pytest

from dualwrite.coordinator import BoundedPool, TaskCoordinator, TaskState


def test_results_come_in_submission_order_whatever_the_finishing_order() -> None:
    # task 0 waits until task 2 has finished: completion order differs from submission order
    two_done = threading.Event()

    def first() -> int:
        assert two_done.wait(10)
        return 0

    def last() -> int:
        two_done.set()
        return 2

    with BoundedPool[int](3, name="t") as pool:
        futures = [pool.submit(first), pool.submit(lambda: 1), pool.submit(last)]
        completed = [f.index for f in pool.as_completed()]
        assert pool.results() == [0, 1, 2]
    assert completed.index(2) < completed.index(0)
    assert [f.state for f in futures] == [TaskState.SUCCEEDED] * 3


def test_the_first_failure_cancels_the_tasks_not_started_and_stops_the_running_ones() -> None:
    started = threading.Event()
    saw_stop: list[bool] = []
    release = threading.Event()

    with BoundedPool[int](2, name="t") as pool:

        def running() -> int:
            started.set()
            assert release.wait(10)
            saw_stop.append(pool.stopping)
            return 1

        def failing() -> int:
            assert started.wait(10)
            raise ValueError("boom")

        futures = [pool.submit(running), pool.submit(failing)]
        # the two workers are busy: these wait in the queue and never start
        queued = [pool.submit(lambda: 99) for _ in range(3)]
        # wait for the failure (it runs on the second worker), then let the first finish
        assert isinstance(futures[1].exception(), ValueError)
        release.set()
        with pytest.raises(ValueError, match="boom"):
            pool.results()
    assert saw_stop == [True]  # the running task was told to stop after its step
    assert futures[0].state is TaskState.SUCCEEDED and futures[0].result() == 1
    assert futures[1].state is TaskState.FAILED
    assert [f.state for f in queued] == [TaskState.CANCELLED] * 3
    with pytest.raises(CancelledError):
        queued[0].result()
    assert isinstance(pool.failure, ValueError)


def test_one_worker_runs_inline_on_the_calling_thread_and_stops_at_the_first_failure() -> None:
    threads: list[str] = []
    ran: list[int] = []

    def task(i: int) -> int:
        threads.append(threading.current_thread().name)
        ran.append(i)
        if i == 1:
            raise RuntimeError("second fails")
        return i

    pool = BoundedPool[int](1)
    assert pool.inline
    futures = [pool.submit(lambda i=i: task(i)) for i in range(4)]
    assert ran == []  # nothing runs before the caller asks
    states = [(f.index, f.state) for f in pool.as_completed()]
    assert ran == [0, 1]
    assert states == [
        (0, TaskState.SUCCEEDED),
        (1, TaskState.FAILED),
        (2, TaskState.CANCELLED),
        (3, TaskState.CANCELLED),
    ]
    assert set(threads) == {threading.current_thread().name}
    assert [f.done() for f in futures] == [True] * 4
    with pytest.raises(RuntimeError):
        pool.results()


def test_an_outside_stop_makes_tasks_stop_but_cancels_nothing() -> None:
    stop = threading.Event()
    pool = BoundedPool[bool](1, stop=stop.is_set)
    pool.submit(lambda: pool.stopping)
    pool.submit(lambda: pool.stopping)
    first = next(iter(pool.as_completed()))
    assert first.result() is False
    stop.set()
    assert pool.results() == [False, True]


def test_a_caller_error_inside_the_pool_cancels_what_did_not_start() -> None:
    tick = threading.Event()  # never set: a bounded wait between looks at pool.stopping

    def busy() -> int:
        while not pool.stopping:
            tick.wait(0.01)
        return 1

    with pytest.raises(KeyboardInterrupt), BoundedPool[int](2) as pool:
        running = [pool.submit(busy) for _ in range(2)]
        waiting = pool.submit(lambda: 3)  # both workers are busy until the pool stops
        raise KeyboardInterrupt
    assert [f.state for f in running] == [TaskState.SUCCEEDED] * 2
    assert waiting.state is TaskState.CANCELLED


def test_states_only_move_forward() -> None:
    seen: list[int] = []
    coordinator: TaskCoordinator[int] = TaskCoordinator(0, lambda c: seen.append(c.index))
    assert coordinator.state is TaskState.QUEUED
    assert coordinator.set_running()
    assert not coordinator.set_running()
    assert not coordinator.cancel()  # a running task is not cancelled, it is told to stop
    coordinator.set_result(5)
    assert coordinator.state is TaskState.SUCCEEDED and coordinator.result() == 5
    with pytest.raises(RuntimeError):
        coordinator.set_exception(ValueError())
    assert seen == [0]  # announced once
    cancelled: TaskCoordinator[int] = TaskCoordinator(1, lambda c: seen.append(c.index))
    assert cancelled.cancel()
    assert not cancelled.set_running()
    assert cancelled.state is TaskState.CANCELLED and seen == [0, 1]


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError):
        BoundedPool[int](0)
