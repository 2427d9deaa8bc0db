"""Composition roots: each builds one process's components from Settings and owns their lifecycle.

Nothing else in the package constructs infrastructure; everything below receives its
collaborators through its constructor.
"""

from favorited.app.api import ApiApp, run_api
from favorited.app.consumer import ConsumerApp, run_consumer
from favorited.app.signals import wait_for_termination
from favorited.app.webhooks import WebhooksApp, run_webhooks

__all__ = [
    "ApiApp",
    "ConsumerApp",
    "WebhooksApp",
    "run_api",
    "run_consumer",
    "run_webhooks",
    "wait_for_termination",
]
