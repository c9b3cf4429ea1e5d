"""collector.bulk: the young-generation threshold is raised for bulk work and given back."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from dualwrite import collector


@pytest.fixture(autouse=True)
def _known_threshold() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_bulk_raises_the_young_threshold_and_restores_it() -> None:
    with collector.bulk():
        assert gc.get_threshold() == (collector.BULK_THRESHOLD, 10, 10)
        with collector.bulk():  # nested: still raised
            assert gc.get_threshold()[0] == collector.BULK_THRESHOLD
        assert gc.get_threshold()[0] == collector.BULK_THRESHOLD
    assert gc.get_threshold() == (700, 10, 10)


def test_bulk_restores_after_an_error() -> None:
    with pytest.raises(RuntimeError), collector.bulk():
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)


def test_threads_leaving_out_of_order_restore_only_when_the_last_leaves() -> None:
    first_in, second_in, first_may_leave = threading.Event(), threading.Event(), threading.Event()
    seen: list[int] = []

    def first() -> None:
        with collector.bulk():
            first_in.set()
            second_in.wait()
            first_may_leave.wait()
        seen.append(gc.get_threshold()[0])  # the second is still inside

    worker = threading.Thread(target=first)
    worker.start()
    first_in.wait()
    with collector.bulk():
        second_in.set()
        first_may_leave.set()
        worker.join()
    assert seen == [collector.BULK_THRESHOLD]
    assert gc.get_threshold() == (700, 10, 10)


def test_cyclic_garbage_is_still_collected_once_it_piles_up() -> None:
    with collector.bulk():
        gc.collect()
        collected: list[int] = []
        gc.callbacks.append(lambda phase, info: collected.append(info["collected"]))
        try:
            for _ in range(collector.BULK_THRESHOLD + 10_000):
                cycle: list[object] = []
                cycle.append(cycle)  # reference counting never frees it
        finally:
            gc.callbacks.pop()
    assert sum(collected) > 0
