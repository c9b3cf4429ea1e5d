"""The application's live writes during the rehearsal (dualwrite.traffic's plan: inserts,
updates, deletes on both legacy tables), in a thread, counted per table."""

from __future__ import annotations

import threading
from typing import Any

from dualwrite import seed as seeding
from dualwrite.traffic import TrafficPlan, run_traffic
from rehearse.context import Rehearsal


class _CountingWrites:
    """The application's DynamoDB client, counting its writes per table."""

    def __init__(self, client: Any, counts: dict[str, int]) -> None:
        self.client, self.counts = client, counts

    def put_item(self, **kwargs: Any) -> Any:
        self.counts[kwargs["TableName"]] = self.counts.get(kwargs["TableName"], 0) + 1
        return self.client.put_item(**kwargs)

    def delete_item(self, **kwargs: Any) -> Any:
        self.counts[kwargs["TableName"]] = self.counts.get(kwargs["TableName"], 0) + 1
        return self.client.delete_item(**kwargs)


def start_traffic(r: Rehearsal) -> None:
    o = r.options
    plan = TrafficPlan(seeding.generate(o.servers, o.memberships, seed=1), seed=5)
    client = _CountingWrites(r.clients.client("dynamodb"), r.writes)

    def traffic() -> None:
        run_traffic(client, plan, r.stop_traffic, rate=o.traffic_rate, stats=r.traffic)

    r.traffic_thread = threading.Thread(target=traffic, name="traffic", daemon=True)
    r.traffic_thread.start()


def stop_traffic(r: Rehearsal) -> None:
    r.stop_traffic.set()
    if r.traffic_thread is not None:
        r.traffic_thread.join(timeout=30)
