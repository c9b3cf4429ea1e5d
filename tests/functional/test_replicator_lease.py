"""One local runner at a time per control table (stream_replicator.lease): a second
`dualwrite replicate` waits, saying who holds the lease, instead of applying the same
streams out of order with the first; a lease its holder stopped renewing (killed) lapses
after lease.TTL_S and is taken over; a runner that stops releases it."""

from __future__ import annotations

import threading

import pytest

from dualwrite.errors import DualwriteError
from stream_replicator import lease
from stream_replicator.runner_settings import Clock
from tests.functional.test_replicator_runner import Env, base, env, mark_backfilled

__all__ = ["base", "env"]  # the fixtures


def test_a_second_runner_waits_for_the_first(env: Env) -> None:
    mark_backfilled(env.store, "servers", "memberships")
    assert lease.acquire(env.store, "other-host:42:abc", env.store.now()) is None
    stop = threading.Event()
    runner = env.runner()

    def noted(note: str) -> None:  # the runner waits until told to stop
        env.notes.append(note)
        stop.set()

    runner.notify = noted

    summary = runner.run(until_caught_up=True, stop=stop)

    assert summary.records == 0 and summary.caught_up is False
    (note,) = env.notes
    assert note.startswith("another `dualwrite replicate` (other-host:42:abc) is replicating")
    held = lease.holder(env.store)
    assert held is not None and held.owner == "other-host:42:abc"


def test_a_lapsed_lease_is_taken_over_and_released_at_the_end(env: Env) -> None:
    mark_backfilled(env.store, "servers", "memberships")
    now = env.store.now()
    assert lease.acquire(env.store, "killed:1:x", now - lease.TTL_S - 1) is None
    runner = env.runner()

    summary = runner.run(until_caught_up=True)

    assert summary.caught_up is True and summary.records > 40
    assert env.notes == []  # nothing to wait for
    assert lease.holder(env.store) is None  # released


def test_a_runner_that_lost_its_lease_stops(env: Env) -> None:
    mark_backfilled(env.store, "servers", "memberships")
    runner = env.runner()
    wall = [env.store.now()]
    runner.clock = Clock(wall=lambda: wall[0], mono=runner.clock.mono)
    assert lease.acquire(env.store, runner.owner, wall[0]) is None
    # it stalls past the TTL; another runner takes the lapsed lease over
    assert lease.acquire(env.store, "newcomer:2:y", wall[0] + lease.TTL_S + 1) is None
    with pytest.raises(DualwriteError, match=r"lease passed to newcomer:2:y"):
        runner._renew_lease()
    held = lease.holder(env.store)
    assert held is not None and held.owner == "newcomer:2:y"


def test_renewing_keeps_since_and_a_stale_read_cannot_take_it_twice(env: Env) -> None:
    t = env.store.now()
    assert lease.acquire(env.store, "a", t) is None
    assert lease.acquire(env.store, "a", t + 10) is None
    held = lease.holder(env.store)
    assert held is not None and (held.owner, held.since, held.renewed_at) == ("a", t, t + 10)
    assert lease.acquire(env.store, "b", t + 20) == held  # live: b waits
    lease.release(env.store, "b")  # not b's: nothing happens
    assert lease.holder(env.store) == held
    lease.release(env.store, "a")
    assert lease.holder(env.store) is None


def test_a_holder_known_to_be_gone_is_taken_over_at_once(env: Env) -> None:
    """kill -9 of a runner on this machine: the next one need not wait for the TTL."""
    import os
    import socket
    import subprocess
    import sys

    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = f"{socket.gethostname()}:{ended.stdout.strip()}:x"
    alive = f"{socket.gethostname()}:{os.getpid()}:y"
    elsewhere = f"other-host:{ended.stdout.strip()}:z"
    host = socket.gethostname()
    assert lease.process_gone(dead, host)
    assert not lease.process_gone(alive, host) and not lease.process_gone(elsewhere, host)

    assert lease.acquire(env.store, dead, env.store.now()) is None
    mark_backfilled(env.store, "servers", "memberships")
    summary = env.runner().run(until_caught_up=True)
    assert summary.caught_up is True and env.notes == []
