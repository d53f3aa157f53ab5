"""tenants/changes.py: the services tell the registered recorders what they changed inside their own
transaction, so a recorder that fails undoes the change; name checks and deletion impact are asked
of every recorder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.exceptions import ValidationError

from provisioning.models import ProvisioningIntent, TenantSync
from provisioning.services import ProvisioningRecorder
from tenants import changes
from tenants import services as tenant_services
from tenants.changes import ChangeRecorder, NamespaceImpact, TenantChange
from tenants.models import AuditEvent, Tenant
from tests.tenants.builders import spec

pytestmark = pytest.mark.django_db


class Broken(Exception):
    pass


class Recorder(ChangeRecorder):
    """A second app following the tenants: keeps what it was told, fails when told to."""

    def __init__(self) -> None:
        self.seen: list[TenantChange] = []
        self.fail = False
        self.refused_names: set[str] = set()

    def change_record(self, change: TenantChange) -> None:
        self.seen.append(change)
        if self.fail:
            raise Broken(change.reason)

    def name_check(self, tenant: Tenant) -> None:
        if tenant.name in self.refused_names:
            raise ValidationError({"name": [f"{tenant.name} is taken elsewhere."]})

    def deletion_impact(self, *, tenant_ids: list[int], ask_clusters: bool) -> list[NamespaceImpact]:
        return [NamespaceImpact("elsewhere", f"space-{pk}", None, "not asked") for pk in sorted(tenant_ids)]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    registered = Recorder()
    changes.recorder_register("test", registered)
    yield registered
    changes.recorder_unregister("test")


def test_provisioning_registers_its_recorder_when_django_starts():
    assert any(isinstance(r, ProvisioningRecorder) for r in changes.recorders())


def test_every_recorder_is_told_the_change_in_the_services_transaction(k8s_world, recorder):
    w = k8s_world
    tenant_services.allocation_set(acting_user=w.admin, tenant=w.dev1, spec=spec(w.pool, gpu=0))
    assert recorder.seen == [TenantChange(reason="ALLOCATION_SET", tenants=(w.dev1,), parents=True)]


def test_a_failing_recorder_rolls_the_change_back(k8s_world, recorder):
    w = k8s_world
    recorder.fail = True
    audits, intents = AuditEvent.objects.count(), ProvisioningIntent.objects.count()
    with pytest.raises(Broken):
        tenant_services.tenant_update(acting_user=w.admin, tenant=w.dev1, description="never saved")
    with pytest.raises(Broken):
        tenant_services.tenant_create(acting_user=w.admin, parent=w.department1, name="dev3")
    # Neither change, nor its audit row, nor the intents provisioning recorded before it.
    w.dev1.refresh_from_db()
    assert w.dev1.description != "never saved"
    assert not Tenant.objects.filter(name_path="department1/dev3").exists()
    assert not TenantSync.objects.filter(tenant_path="department1/dev3").exists()
    assert (AuditEvent.objects.count(), ProvisioningIntent.objects.count()) == (audits, intents)
    assert [c.reason for c in recorder.seen] == ["TENANT_UPDATED", "TENANT_CREATED"]


def test_a_recorder_refuses_a_name_on_its_field_and_nothing_is_created(k8s_world, recorder):
    w = k8s_world
    recorder.refused_names = {"dev3"}
    with pytest.raises(ValidationError) as refused:
        tenant_services.tenant_create(acting_user=w.admin, parent=w.department1, name="dev3")
    assert refused.value.message_dict == {"name": ["dev3 is taken elsewhere."]}
    assert not Tenant.objects.filter(name_path="department1/dev3").exists()
    assert recorder.seen == []


def test_deletion_impact_names_what_every_recorder_says_goes(k8s_world, recorder):
    w = k8s_world
    impact = tenant_services.tenant_deletion_impact(w.department1, ask_clusters=False)
    assert {(n.cluster, n.namespace) for n in impact.namespaces} >= {
        ("elsewhere", f"space-{t.pk}") for t in (w.department1, w.dev1, w.dev2)
    }
    with pytest.raises(ValidationError) as refused:
        tenant_services.tenant_delete(acting_user=w.admin, tenant=w.dev2)
    assert f"namespace space-{w.dev2.pk} on elsewhere" in refused.value.message_dict["confirm"][0]
    assert Tenant.objects.filter(pk=w.dev2.pk).exists()
