"""Every scenario, in the order a full run executes them."""

from __future__ import annotations

from bench.scenario import Scenario
from bench.scenarios.end import End100k
from bench.scenarios.listing import ListPage
from bench.scenarios.rpc import Create, Join
from bench.scenarios.viewer_counts import ViewerCounts
from bench.scenarios.watch import WatchFanout, WatchFanoutMany
from bench.scenarios.webhooks import WebhookDrain, WebhookEndToEnd, WebhookIngest

SCENARIOS: dict[str, type[Scenario]] = {
    cls.spec.name: cls
    for cls in (
        WebhookIngest,
        WebhookDrain,
        WebhookEndToEnd,
        Join,
        Create,
        End100k,
        ListPage,
        WatchFanout,
        WatchFanoutMany,
        ViewerCounts,
    )
}
