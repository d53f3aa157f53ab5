"""Following the tenants (`tenants.changes`): `ProvisioningRecorder`, registered in
`ProvisioningConfig.ready()`, is called by `tenants.services` inside each write's transaction, so the
namespace name (`namespace_reserve`), the change to push (`intent_record`) and a deletion's impact
(`namespace_impact`) are decided with the change."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError

from provisioning.backends.base import BackendError
from provisioning.desired.kubernetes import namespace_name
from provisioning.models import ClusterSyncStatus, KubernetesConnection, TenantSync
from provisioning.services.intents import intent_record
from provisioning.services.reconcile import backend_for
from tenants.changes import ChangeRecorder, NamespaceImpact, TenantChange
from tenants.models import Cluster, Tenant


def namespace_reserve(*, tenant: Tenant) -> TenantSync:
    """Fix a new tenant's namespace name, refusing one another tenant has (e.g. `a-b/c` and
    `a/b-c` both make `a-b-c`). Called by `tenant_create` in its transaction."""
    name = namespace_name(tenant.name_path)
    holder = TenantSync.objects.filter(namespace=name).exclude(tenant_id=tenant.pk).first()
    if holder is not None:
        if Tenant.objects.filter(pk=holder.tenant_id).exists():
            message = f"Its Kubernetes namespace would be {name}, which tenant {holder.tenant_path} already has; choose another name."
        else:
            message = (
                f"Its Kubernetes namespace would be {name}, which still belongs to the deleted tenant "
                f"{holder.tenant_path} until it is gone from the clusters; choose another name or try again later."
            )
        raise ValidationError({"name": [message]})
    sync, _ = TenantSync.objects.update_or_create(
        tenant_id=tenant.pk, defaults={"tenant_path": tenant.name_path, "namespace": name}
    )
    return sync


def namespace_impact(*, tenant_ids: Iterable[int], ask_clusters: bool = True) -> list[NamespaceImpact]:
    """The namespaces deleting these tenants would delete, with the pods still running in each
    (asked of the cluster now; with `ask_clusters=False` not asked, the database only). Called by
    `tenants.services.tenant_deletion_impact` through `ProvisioningRecorder`. Asking waits on the network: never while holding a
    row lock."""
    rows = (
        ClusterSyncStatus.objects.filter(
            sync__tenant_id__in=list(tenant_ids), provisioned=True, cluster__kind=Cluster.Kind.KUBERNETES
        )
        .select_related("sync", "cluster")
        .order_by("cluster__name", "sync__namespace")
    )
    if not ask_clusters:
        return [NamespaceImpact(row.cluster.name, row.sync.namespace, None, "not asked") for row in rows]
    impacts = []
    for row in rows:
        connection = KubernetesConnection.objects.filter(cluster=row.cluster).first()
        backend = backend_for(row.cluster, connection, quick=True)
        pods: int | None = None
        note = "no connection"
        if backend is not None:
            note = f"{backend.name} backend"
            try:
                with backend:
                    pods = backend.active_pods(row.sync.namespace)
            except BackendError as error:
                note = error.message
        impacts.append(
            NamespaceImpact(row.cluster.name, row.sync.namespace, pods, note if pods is None else "")
        )
    return impacts


class ProvisioningRecorder(ChangeRecorder):
    """How provisioning follows every write to the tenants (`tenants.changes`), inside the write's
    transaction: a new tenant's namespace name is fixed (or refused), a change becomes intents,
    a deletion names the namespaces it takes. Registered in `ProvisioningConfig.ready()`."""

    def change_record(self, change: TenantChange) -> None:
        intent_record(
            reason=change.reason,
            tenants=change.tenants,
            tenant_ids=change.tenant_ids,
            users=change.users,
            subtree=change.subtree,
            parents=change.parents,
        )

    def name_check(self, tenant: Tenant) -> None:
        namespace_reserve(tenant=tenant)

    def deletion_impact(self, *, tenant_ids: list[int], ask_clusters: bool) -> list[NamespaceImpact]:
        return namespace_impact(tenant_ids=tenant_ids, ask_clusters=ask_clusters)
