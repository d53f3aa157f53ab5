"""Quota requests (issue 19, point 1) and the in-app inbox.

A member asks for more of one pool (the new total of one or more amounts, optionally until a date,
with a reason); the admins of the tenant that would have to give it decide (`quotas.giving`:
the nearest ancestor with room, else platform admins). Written only by `quotas.services`; read
through `quotas.selectors`, which restrict through `tenants.permissions`.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from quotas import texts
from tenants.models import ResourcePool, Tenant

REASON_MAX = 2000
COMMENT_MAX = 2000


def percent_field() -> models.DecimalField:
    """A YARN percentage as allocations keep it: 0 to 100, two decimals; empty: not asked for."""
    return models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )


class QuotaRequest(models.Model):
    """One ask for more (or less) of a tenant's allocation in one pool.

    The amounts are the totals asked for, in the units of `tenants.models.AllocationAmounts`
    (GPUs as a count, CPU in millicores, memory in bytes; YARN capacities in percent). Empty: not
    part of the request (that amount stays as it is). `held` keeps what the tenant had of each asked
    amount when it asked, `granted` what a decision gave."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        APPROVED = "approved", "Approved"
        CHANGED = "changed", "Approved with changes"
        REFUSED = "refused", "Refused"
        WITHDRAWN = "withdrawn", "Withdrawn"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="quota_requests")
    pool = models.ForeignKey(ResourcePool, on_delete=models.CASCADE, related_name="quota_requests")
    gpu = models.PositiveIntegerField(null=True, blank=True)
    cpu_millicores = models.PositiveBigIntegerField(null=True, blank=True)
    memory_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    capacity_percent = percent_field()
    max_capacity_percent = percent_field()
    held = models.JSONField(default=dict, blank=True, help_text="What the tenant had when it asked.")
    granted = models.JSONField(default=dict, blank=True, help_text="What the decision gave.")
    until = models.DateTimeField(null=True, blank=True, help_text="When the change should end; empty: never.")
    reason = models.TextField(max_length=REASON_MAX)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="quota_requests"
    )
    requester_name = models.CharField(max_length=150)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN, db_index=True)
    # Whose admins decide: the tenant that would have to give it. Null: platform admins.
    deciding_tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="quota_requests_to_decide"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by_name = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True, max_length=COMMENT_MAX)
    # Why an approval could not be applied (the allocation rules' own words); empty otherwise.
    refusal_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["deciding_tenant", "state"], name="quota_request_decider_idx")]

    def __str__(self) -> str:
        return f"Quota request {self.pk} for {self.tenant.name_path} in {self.pool}"

    @property
    def is_open(self) -> bool:
        return self.state == self.State.OPEN

    @property
    def asked_summary(self) -> str:
        """'GPUs: 2 GPUs, Memory: 64 GiB'."""
        return texts.asked_text(texts.asked_of(self))


class Notification(models.Model):
    """One message in a person's in-app inbox (also sent by e-mail when they have an address)."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    subject = models.CharField(max_length=200)
    body = models.TextField()
    link = models.CharField(max_length=500, blank=True, help_text="A console path to open.")
    quota_request = models.ForeignKey(
        QuotaRequest, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipient", "read_at"], name="notification_unread_idx")]

    def __str__(self) -> str:
        return self.subject
