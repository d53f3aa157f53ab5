"""The demo's quota request (scripts/console.sh, after `load_demo`): Bob asks for a second GPU for
dev1, so the embedded default shows a request waiting for a decision. Made through the service,
like any request (audited, the deciders told); a second run adds nothing."""

from __future__ import annotations

import datetime

from django.contrib.auth import get_user_model
from django.utils import timezone

from quotas import services
from quotas.models import QuotaRequest
from tenants.models import ResourcePool, Tenant

DEMO_REASON = "DEMO: the new model's training runs need a second GPU for two weeks."


def demo_quota_requests() -> QuotaRequest | None:
    """Bob's open request for 2 GPUs on department1/dev1 (None when the demo's tenants are not
    there). Idempotent."""
    bob = get_user_model().objects.filter(username="bob").first()
    dev1 = Tenant.objects.filter(name_path="department1/dev1").first()
    pool = ResourcePool.objects.filter(cluster__name="gpu-cluster", name=ResourcePool.DEFAULT_NAME).first()
    if bob is None or dev1 is None or pool is None:
        return None
    existing = QuotaRequest.objects.filter(requester=bob, tenant=dev1, reason=DEMO_REASON).first()
    if existing is not None:
        return existing
    return services.quota_request_create(
        acting_user=bob,
        tenant=dev1,
        pool=pool,
        asked={"gpu": 2},
        reason=DEMO_REASON,
        until=timezone.now() + datetime.timedelta(days=14),
    )
