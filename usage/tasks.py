"""Thin Celery tasks for usage (issue 7): take ids, call a service. Safe to run twice.

The tasks keep the names they had when they lived in provisioning (`provisioning.usage_*`): beat's
schedule (portal/settings/base.py) and messages already queued name them.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from usage import services


@shared_task(name="provisioning.usage_collect_due")
def usage_collect_due() -> list[int]:
    """Beat (every 15 s): claim the clusters whose collection interval has passed and collect each
    in its own task, so a slow or failing cluster holds up no other."""
    claimed = services.usage_clusters_claim()
    for cluster_id in claimed:
        usage_collect_cluster.delay(cluster_id)
    return claimed


@shared_task(name="provisioning.usage_collect_cluster")
def usage_collect_cluster(cluster_id: int) -> dict[str, Any]:
    """One pass over one cluster; its faults are recorded on its UsageCollection row, not raised
    (the next pass is the retry)."""
    return services.usage_collect(cluster_id=cluster_id).as_dict()


@shared_task(name="provisioning.usage_rollup_recent")
def usage_rollup_recent() -> dict[str, Any]:
    """Beat (every 5 min): hourly rollups, yesterday's daily rollup once, retention."""
    return services.usage_rollup_recent()
