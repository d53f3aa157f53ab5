"""Every write to Canopy's domain. The API, the pages, the admin and management commands call these;
nothing else saves a domain row.

Each service takes keyword-only arguments with an explicit `acting_user`, checks permission through
`tenants.permissions`, runs in one transaction, enforces the allocation rules under a row lock on the
resource pool (so two admins racing for the last GPU cannot both win), and writes one audit row.
Rule violations raise `django.core.exceptions.ValidationError` with a dict keyed by the API's field
names; a tenant the user may not see raises `Http404`, one they may see but not change
`PermissionDenied`.
"""

from __future__ import annotations

import posixpath
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from django.db import IntegrityError, transaction
from django.db.models import Sum, Value
from django.db.models.functions import Concat, Substr

from tenants import labels, paths, rules
from tenants.amounts import (
    POOL_CAPACITY_FIELDS,
)
from tenants.audit import audit, audited_delete, audited_save, snapshot
from tenants.changes import NamespaceImpact, TenantChange, change_record, deletion_impact, name_check
from tenants.cluster_names import name_problem
from tenants.models import (
    Allocation,
    Cluster,
    Membership,
    NfsShare,
    NfsShareGrant,
    QuotaPlan,
    QuotaPlanAllocation,
    QuotaPlanStorage,
    ResourcePool,
    StorageDirectory,
    Tenant,
    Volume,
    VolumeAttachment,
    dns_label_validator,
)
from tenants.permissions import Action, require, require_platform_admin, visible_tenants
from tenants.roles import reaches_below

User = get_user_model()

# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass
class AllocationSpec:
    """What to allocate in one pool. None means unlimited (GPU/CPU/memory) and, for a burst, no
    burst (the guaranteed amount is the most); YARN pools use percents."""

    pool: ResourcePool
    gpu: int | None = None
    cpu_millicores: int | None = None
    memory_bytes: int | None = None
    capacity_percent: Decimal | None = None
    max_capacity_percent: Decimal | None = None
    gpu_burst: int | None = None
    cpu_millicores_burst: int | None = None
    memory_bytes_burst: int | None = None

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ALLOCATION_FIELDS}


@dataclass
class StorageSpec:
    cluster: Cluster
    path: str | None = None
    space_quota_bytes: int | None = None
    file_quota: int | None = None


@dataclass
class NfsShareSpec:
    cluster: Cluster
    name: str
    server: str
    base_path: str
    description: str = ""


@dataclass
class VolumeSpec:
    """A directory of `share` (at `sub_path`, "" for its base path) for `tenants`."""

    share: NfsShare | None
    name: str
    capacity_bytes: int
    sub_path: str = ""
    scope: str = Volume.Scope.PRIVATE
    access_mode: str = Volume.AccessMode.READ_WRITE_MANY
    description: str = ""
    tenants: Sequence[Tenant] = ()
    claim_names: dict[int, str] = field(default_factory=dict)  # tenant id -> PVC name


# ---------------------------------------------------------------------------------------------
# Shared helpers


TENANT_FIELDS = ("name", "name_path", "display_name", "description", "leaf", "state", "plan_id")
ALLOCATION_FIELDS = (
    "gpu",
    "cpu_millicores",
    "memory_bytes",
    "gpu_burst",
    "cpu_millicores_burst",
    "memory_bytes_burst",
    "capacity_percent",
    "max_capacity_percent",
)
POOL_FIELDS = (
    "name",
    "node_selector",
    "description",
    "gpu_capacity",
    "cpu_capacity_millicores",
    "memory_capacity_bytes",
)
STORAGE_FIELDS = ("path", "space_quota_bytes", "file_quota")
VOLUME_FIELDS = (
    "name",
    "sub_path",
    "server",
    "export_path",
    "capacity_bytes",
    "access_mode",
    "scope",
    "description",
)


def _allocation_snapshot(allocation: Allocation) -> dict[str, Any]:
    return {"pool": str(allocation.pool), **snapshot(allocation, ALLOCATION_FIELDS)}


def _volume_snapshot(volume: Volume) -> dict[str, Any]:
    data = {"share": volume.share.name, **snapshot(volume, VOLUME_FIELDS)}
    data["tenants"] = {
        a.tenant.name_path: a.claim_name
        for a in volume.attachments.select_related("tenant").order_by("tenant__path")
    }
    return data


def _locked_tenant(tenant: Tenant) -> Tenant:
    return Tenant.objects.select_for_update().get(pk=tenant.pk)


def _lock_pools(pools: Iterable[ResourcePool]) -> dict[int, ResourcePool]:
    """Lock pool rows in id order (a fixed order, so two writers never deadlock)."""
    ids = sorted({pool.pk for pool in pools})
    return {
        pool.pk: pool
        for pool in ResourcePool.objects.select_for_update()
        .select_related("cluster")
        .filter(pk__in=ids)
        .order_by("pk")
    }


def _parent_of(tenant: Tenant) -> Tenant | None:
    parent_path = tenant.parent_tree_path
    return Tenant.objects.get(path=parent_path) if parent_path else None


def _children_filter(parent: Tenant | None, prefix: str = "") -> dict[str, Any]:
    if parent is None:
        return {f"{prefix}depth": 1}
    return {f"{prefix}depth": parent.depth + 1, f"{prefix}path__startswith": parent.path}


def _errors() -> defaultdict[str, list[str]]:
    return defaultdict(list)


def _raise_if(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationError(dict(errors))


def _listed_once(items: Iterable[Any], field: str, what: str) -> dict[str, list[str]]:
    """Refuse a pool (or cluster) named twice in one request, by name: keeping one of the two rows
    silently would write something the caller did not ask for."""
    counts = Counter(items)
    errors = _errors()
    for item, count in counts.items():
        if count > 1:
            errors[field].append(f"{what} {item} is listed {count} times; list each {what.lower()} once.")
    return errors


def _validate_name(name: str, field_name: str = "name") -> None:
    try:
        dns_label_validator(name)
    except ValidationError as exc:
        raise ValidationError({field_name: exc.messages}) from exc


# ---------------------------------------------------------------------------------------------
# Allocations: the rules are in tenants.rules; here the figures they read, under the pool's lock.


def _holding(allocation: Allocation) -> rules.Holding:
    return rules.Holding(
        allocation.tenant.name_path, {name: getattr(allocation, name) for name in ALLOCATION_FIELDS}
    )


def _pool_figures(pool: ResourcePool) -> rules.PoolFigures:
    capacity = {name: getattr(pool, column) for name, column in POOL_CAPACITY_FIELDS.items()}
    return rules.PoolFigures(name=str(pool), yarn=pool.is_yarn, capacity=capacity)


def _place(tenant: Tenant, parent: Tenant | None, pool: ResourcePool) -> rules.Place:
    """Where `tenant`'s allocation in `pool` goes under `parent`, as the rules read it (four queries
    whatever the number of sub-tenants)."""
    under = Allocation.objects.filter(pool=pool, **_children_filter(parent, "tenant__"))
    sums = {f"sum_{column}": Sum(column) for column in rules.SUMMED}

    def summed(rows: Any) -> dict[str, Any]:
        found = rows.aggregate(**sums)
        return {column: found[f"sum_{column}"] for column in rules.SUMMED}

    children = Allocation.objects.filter(pool=pool, **_children_filter(tenant, "tenant__")).select_related(
        "tenant"
    )
    parent_allocation = (
        Allocation.objects.filter(tenant=parent, pool=pool).select_related("tenant").first()
        if parent
        else None
    )
    figures = _pool_figures(pool)
    return rules.Place(
        pool=figures.name,
        yarn=figures.yarn,
        capacity=figures.capacity,
        parent=parent.name_path if parent else None,
        parent_holding=_holding(parent_allocation) if parent_allocation else None,
        held=summed(under),
        holds=summed(under.filter(tenant=tenant)),
        children=[_holding(row) for row in children],
    )


def _allocation_errors(
    tenant: Tenant, parent: Tenant | None, pool: ResourcePool, values: dict[str, Any]
) -> dict[str, list[str]]:
    return rules.allocation_errors(tenant.name_path, values, _place(tenant, parent, pool))


def _write_allocation(
    *, acting_user: AbstractBaseUser, tenant: Tenant, spec: AllocationSpec, parent: Tenant | None
) -> Allocation:
    """Create or update one allocation after the rules pass. Caller holds the transaction."""
    pool = _lock_pools([spec.pool])[spec.pool.pk]
    values = rules.with_defaults(pool.is_yarn, spec.values())
    _raise_if(_allocation_errors(tenant, parent, pool, values))
    allocation = Allocation.objects.filter(tenant=tenant, pool=pool).first()
    before = _allocation_snapshot(allocation) if allocation else None
    if allocation is None:
        allocation = Allocation(tenant=tenant, pool=pool)
    for name, value in values.items():
        setattr(allocation, name, value)
    audited_save(
        allocation,
        acting_user=acting_user,
        action="ALLOCATION_UPDATED" if before else "ALLOCATION_CREATED",
        tenant=tenant,
        before=before,
        after=_allocation_snapshot,
    )
    return allocation


def allocation_set(*, acting_user: AbstractBaseUser, tenant: Tenant, spec: AllocationSpec) -> Allocation:
    """Give `tenant` these amounts in `spec.pool` (create or replace). Set from above: the tenant's
    own admins cannot raise their own allocation."""
    require(acting_user, Action.MANAGE, tenant)
    with transaction.atomic():
        tenant = _locked_tenant(tenant)
        allocation = _write_allocation(
            acting_user=acting_user, tenant=tenant, spec=spec, parent=_parent_of(tenant)
        )
        change_record(TenantChange(tenants=[tenant], parents=True, reason="ALLOCATION_SET"))
        return allocation


def allocation_delete(*, acting_user: AbstractBaseUser, allocation: Allocation) -> None:
    require(acting_user, Action.MANAGE, allocation.tenant)
    with transaction.atomic():
        _lock_pools([allocation.pool])
        children = Allocation.objects.filter(
            pool=allocation.pool, **_children_filter(allocation.tenant, "tenant__")
        )
        names = [row.tenant.name_path for row in children.select_related("tenant")]
        if names:
            raise ValidationError(
                {
                    "pool": [
                        f"Sub-tenants {', '.join(names)} still have allocations in pool {allocation.pool}; remove them first."
                    ]
                }
            )
        audited_delete(
            allocation,
            acting_user=acting_user,
            action="ALLOCATION_DELETED",
            tenant=allocation.tenant,
            before=_allocation_snapshot(allocation),
        )
        change_record(TenantChange(tenants=[allocation.tenant], parents=True, reason="ALLOCATION_DELETED"))


# ---------------------------------------------------------------------------------------------
# Clusters and pools


def cluster_create(*, acting_user: AbstractBaseUser, name: str, kind: str, description: str = "") -> Cluster:
    """A new cluster, with its `default` pool (capacity 0 until the admin sets it)."""
    require_platform_admin(acting_user)
    cluster = Cluster(name=name, kind=kind, description=description)
    cluster.full_clean()
    with transaction.atomic():
        cluster.save()
        ResourcePool.objects.create(cluster=cluster, name=ResourcePool.DEFAULT_NAME)
        audit(
            acting_user=acting_user,
            action="CLUSTER_CREATED",
            target=cluster,
            tenant=None,
            after={"name": name, "kind": kind, "description": description},
        )
    return cluster


def cluster_update(*, acting_user: AbstractBaseUser, cluster: Cluster, description: str) -> Cluster:
    require_platform_admin(acting_user)
    with transaction.atomic():
        before = snapshot(cluster, ("description",))
        cluster.description = description
        audited_save(
            cluster,
            acting_user=acting_user,
            action="CLUSTER_UPDATED",
            tenant=None,
            before=before,
            after=("description",),
            update_fields=["description", "updated_at"],
        )
    return cluster


def cluster_delete(*, acting_user: AbstractBaseUser, cluster: Cluster) -> None:
    require_platform_admin(acting_user)
    with transaction.atomic():
        in_use = sorted(
            {
                a.tenant.name_path
                for a in Allocation.objects.filter(pool__cluster=cluster).select_related("tenant")
            }
            | {
                s.tenant.name_path
                for s in StorageDirectory.objects.filter(cluster=cluster).select_related("tenant")
            }
        )
        if in_use or cluster.volumes.exists() or cluster.nfs_shares.exists():
            users = ", ".join(in_use) or "volumes and NFS shares"
            raise ValidationError(
                {"cluster": [f"Cluster {cluster} is still used by {users}; remove those first."]}
            )
        audit(
            acting_user=acting_user,
            action="CLUSTER_DELETED",
            target=cluster,
            tenant=None,
            before={"name": cluster.name, "kind": cluster.kind},
        )
        QuotaPlanAllocation.objects.filter(pool__cluster=cluster).delete()
        QuotaPlanStorage.objects.filter(cluster=cluster).delete()
        cluster.pools.all().delete()
        cluster.delete()


POOL_API_NAMES = {"cpu_capacity_millicores": "cpu_capacity", "memory_capacity_bytes": "memory_capacity"}


def _clean_pool(pool: ResourcePool) -> None:
    """Django's field checks, with errors under the API's names."""
    try:
        pool.full_clean()
    except ValidationError as exc:
        raise ValidationError({POOL_API_NAMES.get(k, k): v for k, v in exc.message_dict.items()}) from exc


def _pool_errors(pool: ResourcePool) -> dict[str, list[str]]:
    errors = _errors()
    check_selector = labels.yarn_node_label_errors if pool.is_yarn else labels.node_selector_errors
    selector_errors = check_selector(pool.node_selector)
    if selector_errors:
        errors["node_selector"] = selector_errors
    level1 = Allocation.objects.filter(pool=pool, tenant__depth=1).select_related("tenant") if pool.pk else []
    rules.extend(errors, rules.pool_errors(_pool_figures(pool), [_holding(row) for row in level1]))
    return errors


def pool_create(
    *,
    acting_user: AbstractBaseUser,
    cluster: Cluster,
    name: str,
    node_selector: str = "",
    description: str = "",
    gpu_capacity: int = 0,
    cpu_capacity_millicores: int = 0,
    memory_capacity_bytes: int = 0,
) -> ResourcePool:
    require_platform_admin(acting_user)
    pool = ResourcePool(
        cluster=cluster,
        name=name,
        node_selector=node_selector,
        description=description,
        gpu_capacity=gpu_capacity,
        cpu_capacity_millicores=cpu_capacity_millicores,
        memory_capacity_bytes=memory_capacity_bytes,
    )
    _clean_pool(pool)
    _raise_if(_pool_errors(pool))
    with transaction.atomic():
        audited_save(pool, acting_user=acting_user, action="POOL_CREATED", tenant=None, after=POOL_FIELDS)
    return pool


def pool_update(*, acting_user: AbstractBaseUser, pool: ResourcePool, **changes: Any) -> ResourcePool:
    """Change a pool's selector, description or capacity. Capacity never drops below what level-1
    tenants hold; the error names them."""
    require_platform_admin(acting_user)
    allowed = set(POOL_FIELDS) - {"name"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({name: ["This field cannot be changed."] for name in unknown})
    with transaction.atomic():
        pool = _lock_pools([pool])[pool.pk]
        before = snapshot(pool, POOL_FIELDS)
        for name, value in changes.items():
            setattr(pool, name, value)
        _clean_pool(pool)
        _raise_if(_pool_errors(pool))
        audited_save(
            pool,
            acting_user=acting_user,
            action="POOL_UPDATED",
            tenant=None,
            before=before,
            after=POOL_FIELDS,
        )
        if before["node_selector"] != pool.node_selector:
            # Where the pool's pods may run (Kueue flavors, namespaces' pools, YARN partitions).
            change_record(
                TenantChange(
                    tenants=list(Tenant.objects.filter(allocations__pool=pool).distinct()),
                    reason="POOL_UPDATED",
                )
            )
    return pool


def pool_delete(*, acting_user: AbstractBaseUser, pool: ResourcePool) -> None:
    require_platform_admin(acting_user)
    with transaction.atomic():
        pool = _lock_pools([pool])[pool.pk]
        if pool.name == ResourcePool.DEFAULT_NAME:
            raise ValidationError({"name": ["Every cluster keeps its default pool."]})
        holders = [a.tenant.name_path for a in pool.allocations.select_related("tenant")]
        if holders:
            raise ValidationError(
                {"pool": [f"Tenants {', '.join(holders)} have allocations in {pool}; remove them first."]}
            )
        audited_delete(
            pool,
            acting_user=acting_user,
            action="POOL_DELETED",
            tenant=None,
            before=snapshot(pool, POOL_FIELDS),
        )


# ---------------------------------------------------------------------------------------------
# Tenants


def _check_depth(depth: int, field_name: str = "parent") -> None:
    limit = settings.CANOPY_MAX_TENANT_DEPTH
    if depth > limit:
        raise ValidationError(
            {field_name: [f"The tenant tree is at most {limit} levels deep (CANOPY_MAX_TENANT_DEPTH)."]}
        )


def tenant_create(
    *,
    acting_user: AbstractBaseUser,
    parent: Tenant | None,
    name: str,
    display_name: str = "",
    description: str = "",
    is_leaf: bool = False,
    plan: QuotaPlan | None = None,
    allocations: Sequence[AllocationSpec] = (),
    storage: Sequence[StorageSpec] = (),
) -> Tenant:
    """Create a tenant under `parent` (None: a level-1 tenant, platform admins only), with its
    allocations copied from `plan` and overridden by `allocations`, and its HDFS directories."""
    if parent is None:
        require_platform_admin(acting_user)
    else:
        require(acting_user, Action.ADMINISTER, parent)
    _validate_name(name)
    _raise_if(
        {
            **_listed_once([spec.pool for spec in allocations], "allocations", "Pool"),
            **_listed_once([spec.cluster for spec in storage], "storage", "Cluster"),
        }
    )
    with transaction.atomic():
        if parent is None:
            # Level-1 tenants are roots; treebeard locks nothing when adding one, so creators of
            # level-1 tenants serialize on the first root row (the `default` tenant) before the
            # name check below.
            Tenant.objects.select_for_update().filter(depth=1).order_by("path").first()
        else:
            parent = _locked_tenant(parent)
            if parent.leaf:
                raise ValidationError(
                    {"parent": [f"{parent.name_path} is a leaf tenant; leaf tenants have no sub-tenants."]}
                )
            if parent.state == Tenant.State.DELETING:
                raise ValidationError({"parent": [f"{parent.name_path} is being deleted."]})
        depth = parent.depth + 1 if parent else 1
        _check_depth(depth)
        name_path = f"{parent.name_path}/{name}" if parent else name
        if Tenant.objects.filter(name_path=name_path).exists():
            where = f"under {parent.name_path}" if parent else "at level 1"
            raise ValidationError({"name": [f"A tenant named {name} already exists {where}."]})
        tenant = Tenant(
            name=name,
            name_path=name_path,
            display_name=display_name,
            description=description,
            leaf=is_leaf,
            plan=plan,
        )
        tenant.full_clean(exclude=["path", "depth", "numchild", "name_path"])
        if parent is None:
            tenant = Tenant.objects.add_root(instance=tenant)
        else:
            tenant = Tenant.objects.add_child(parent, instance=tenant)
        # Refused if an app that follows the tenants cannot take the name (a namespace already held).
        name_check(tenant=tenant)

        specs = {spec.pool.pk: spec for spec in _plan_allocation_specs(plan)} if plan else {}
        specs.update({spec.pool.pk: spec for spec in allocations})
        created = [
            _write_allocation(acting_user=acting_user, tenant=tenant, spec=spec, parent=parent)
            for spec in specs.values()
        ]
        storage_specs = {spec.cluster.pk: spec for spec in _plan_storage_specs(plan)} if plan else {}
        storage_specs.update({spec.cluster.pk: spec for spec in storage})
        for spec in storage_specs.values():
            _storage_write(acting_user=acting_user, tenant=tenant, spec=spec)
        audit(
            acting_user=acting_user,
            action="TENANT_CREATED",
            target=tenant,
            tenant=tenant,
            after={
                **snapshot(tenant, TENANT_FIELDS),
                "allocations": [_allocation_snapshot(a) for a in created],
            },
        )
        change_record(TenantChange(tenants=[tenant], parents=True, reason="TENANT_CREATED"))
    return tenant


def tenant_update(
    *,
    acting_user: AbstractBaseUser,
    tenant: Tenant,
    display_name: str | None = None,
    description: str | None = None,
    is_leaf: bool | None = None,
) -> Tenant:
    """Describe a tenant (its admins may), or change its type (set from above)."""
    require(acting_user, Action.ADMINISTER, tenant)
    if is_leaf is not None and is_leaf != tenant.leaf:
        require(acting_user, Action.MANAGE, tenant)
    with transaction.atomic():
        tenant = _locked_tenant(tenant)
        before = snapshot(tenant, TENANT_FIELDS)
        if display_name is not None:
            tenant.display_name = display_name
        if description is not None:
            tenant.description = description
        if is_leaf is not None:
            if is_leaf and tenant.numchild:
                raise ValidationError(
                    {"is_leaf": [f"{tenant.name_path} has sub-tenants, so it cannot become a leaf."]}
                )
            tenant.leaf = is_leaf
        tenant.full_clean(exclude=["path", "depth", "numchild", "name_path"])
        audited_save(
            tenant,
            acting_user=acting_user,
            action="TENANT_UPDATED",
            tenant=tenant,
            before=before,
            after=TENANT_FIELDS,
        )
        change_record(TenantChange(tenants=[tenant], reason="TENANT_UPDATED"))
    return tenant


def tenant_set_state(*, acting_user: AbstractBaseUser, tenant: Tenant, state: str) -> Tenant:
    """Suspend or resume a tenant and its whole subtree."""
    require(acting_user, Action.MANAGE, tenant)
    if state not in (Tenant.State.ACTIVE, Tenant.State.SUSPENDED):
        raise ValidationError(
            {"state": ["A tenant can be set active or suspended; deletion has its own action."]}
        )
    with transaction.atomic():
        tenant = _locked_tenant(tenant)
        before = tenant.state
        changed = (
            Tenant.objects.filter(path__startswith=tenant.path)
            .exclude(state=Tenant.State.DELETING)
            .update(state=state)
        )
        tenant.refresh_from_db()
        audit(
            acting_user=acting_user,
            action="TENANT_SUSPENDED" if state == Tenant.State.SUSPENDED else "TENANT_RESUMED",
            target=tenant,
            tenant=tenant,
            before={"state": before},
            after={"state": state, "tenants_changed": changed},
        )
        change_record(TenantChange(tenants=[tenant], subtree=True, reason="TENANT_STATE_SET"))
    return tenant


@dataclass
class DeletionImpact:
    """What deleting a tenant takes with it; shown before the user confirms."""

    descendants: list[str]
    members: int
    volumes: list[str]
    namespaces: list[NamespaceImpact] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.descendants or self.members or self.volumes or self.namespaces)

    def describe(self) -> str:
        parts = []
        if self.descendants:
            parts.append(f"{len(self.descendants)} sub-tenant(s) ({', '.join(self.descendants)})")
        if self.members:
            parts.append(f"{self.members} membership(s)")
        if self.volumes:
            parts.append(f"volume claim(s) {', '.join(self.volumes)}")
        # Issue 5: namespaces go with the tenant; those with pods still running are named first.
        running = [n.describe() for n in self.namespaces if n.active_pods]
        parts = running + parts + [n.describe() for n in self.namespaces if not n.active_pods]
        return ", ".join(parts)


def tenant_deletion_impact(tenant: Tenant, *, ask_clusters: bool = True) -> DeletionImpact:
    """What deleting `tenant` takes with it; `ask_clusters`: count the pods still running in its
    namespaces (a call to each cluster: never made while a row lock is held)."""
    subtree = Tenant.objects.filter(path__startswith=tenant.path)
    return DeletionImpact(
        descendants=list(subtree.exclude(pk=tenant.pk).values_list("name_path", flat=True)),
        members=Membership.objects.filter(tenant__in=subtree).count(),
        volumes=list(
            VolumeAttachment.objects.filter(tenant__in=subtree).values_list("claim_name", flat=True)
        ),
        namespaces=deletion_impact(
            tenant_ids=subtree.values_list("pk", flat=True), ask_clusters=ask_clusters
        ),
    )


def _with_pods_asked(
    namespaces: list[NamespaceImpact], asked: list[NamespaceImpact]
) -> list[NamespaceImpact]:
    """The namespaces read under the lock, with the running pods the clusters told before it (a
    namespace that appeared in between says it was not asked)."""
    counted = {(n.cluster, n.namespace): n for n in asked}
    return [counted.get((n.cluster, n.namespace), n) for n in namespaces]


def tenant_delete(*, acting_user: AbstractBaseUser, tenant: Tenant, confirm: bool = False) -> None:
    """Delete a tenant with its subtree, allocations, storage, memberships and volume claims.

    A tenant that has sub-tenants, members or volumes is deleted only with `confirm=True`; the
    refusal lists what would go. Private volumes left with no tenant go too.
    """
    require(acting_user, Action.MANAGE, tenant)
    # The clusters are asked for running pods (only the refusal names them) before the tenant's row
    # is locked: a slow or hanging API server must not hold up every other writer of this tenant.
    # Under the lock the database's part is read again, so what the refusal lists is current.
    asked = [] if confirm else tenant_deletion_impact(tenant).namespaces
    with transaction.atomic():
        tenant = _locked_tenant(tenant)
        if tenant.depth == 1 and tenant.name == Tenant.DEFAULT_NAME:
            raise ValidationError({"tenant": ["The default tenant cannot be deleted."]})
        impact = tenant_deletion_impact(tenant, ask_clusters=False)
        impact.namespaces = _with_pods_asked(impact.namespaces, asked)
        if not impact.is_empty and not confirm:
            raise ValidationError(
                {
                    "confirm": [
                        f"Deleting {tenant.name_path} also deletes {impact.describe()}. Confirm to go ahead."
                    ]
                }
            )
        subtree = Tenant.objects.filter(path__startswith=tenant.path)
        inside = set(VolumeAttachment.objects.filter(tenant__in=subtree).values_list("volume_id", flat=True))
        outside = set(
            VolumeAttachment.objects.filter(volume_id__in=inside)
            .exclude(tenant__in=subtree)
            .values_list("volume_id", flat=True)
        )
        orphaned_volumes = Volume.objects.filter(pk__in=inside - outside)
        orphan_names = list(orphaned_volumes.values_list("name", flat=True))
        parent = _parent_of(tenant)
        before = {
            **snapshot(tenant, TENANT_FIELDS),
            "sub_tenants": impact.descendants,
            "members": impact.members,
            "volumes_deleted": orphan_names,
        }
        audit(acting_user=acting_user, action="TENANT_DELETED", target=tenant, tenant=parent, before=before)
        change_record(TenantChange(tenants=[tenant], subtree=True, parents=True, reason="TENANT_DELETED"))
        orphaned_volumes.delete()
        Tenant.objects.filter(pk=tenant.pk).delete()  # treebeard's queryset delete: subtree and numchild


def tenant_move(*, acting_user: AbstractBaseUser, tenant: Tenant, new_parent: Tenant | None) -> Tenant:
    """Move a tenant and its subtree under `new_parent` (None: to level 1).

    Refuses cycles, leaf parents, name clashes, depth overflow, and allocations that do not fit the
    new parent; locks every tenant on both paths so concurrent moves cannot build a cycle.
    """
    require(acting_user, Action.MANAGE, tenant)
    if new_parent is None:
        require_platform_admin(acting_user)
    else:
        require(acting_user, Action.ADMINISTER, new_parent)
    with transaction.atomic():
        lock_paths = set(Tenant.path_prefixes(tenant.path))
        if new_parent is not None:
            lock_paths |= set(Tenant.path_prefixes(new_parent.path))
        list(Tenant.objects.select_for_update().filter(path__in=lock_paths).order_by("path"))
        tenant.refresh_from_db()
        if new_parent is not None:
            new_parent.refresh_from_db()
        if tenant.depth == 1 and tenant.name == Tenant.DEFAULT_NAME:
            raise ValidationError({"tenant": ["The default tenant stays where it is."]})
        old_parent = _parent_of(tenant)
        if (old_parent.pk if old_parent else None) == (new_parent.pk if new_parent else None):
            return tenant
        if new_parent is not None:
            if new_parent.path.startswith(tenant.path):
                raise ValidationError(
                    {
                        "parent": [
                            f"{new_parent.name_path} is inside {tenant.name_path}; a tenant cannot move under itself."
                        ]
                    }
                )
            if new_parent.leaf:
                raise ValidationError(
                    {
                        "parent": [
                            f"{new_parent.name_path} is a leaf tenant; leaf tenants have no sub-tenants."
                        ]
                    }
                )
        subtree_height = (
            Tenant.objects.filter(path__startswith=tenant.path)
            .order_by("-depth")
            .values_list("depth", flat=True)
            .first()
            - tenant.depth
        )
        new_depth = new_parent.depth + 1 if new_parent else 1
        _check_depth(new_depth + subtree_height)
        new_name_path = f"{new_parent.name_path}/{tenant.name}" if new_parent else tenant.name
        if Tenant.objects.filter(name_path=new_name_path).exists():
            raise ValidationError({"parent": [f"{new_name_path} already exists."]})

        allocations = list(Allocation.objects.filter(tenant=tenant).select_related("pool__cluster"))
        _lock_pools(a.pool for a in allocations)
        errors = _errors()
        for allocation in allocations:
            values = {name: getattr(allocation, name) for name in ALLOCATION_FIELDS}
            rules.extend(errors, _allocation_errors(tenant, new_parent, allocation.pool, values))
        errors["parent"].extend(_volumes_stranded_by_move(tenant, new_parent))
        _raise_if({key: value for key, value in errors.items() if value})

        old_name_path = tenant.name_path
        if new_parent is None:
            last_root = Tenant.objects.filter(depth=1).order_by("-path").first()
            Tenant.objects.move(tenant, last_root, "last-sibling")
        else:
            Tenant.objects.move(tenant, new_parent, "last-child")
        tenant.refresh_from_db()
        Tenant.objects.filter(path__startswith=tenant.path).update(
            name_path=Concat(Value(new_name_path), Substr("name_path", len(old_name_path) + 1))
        )
        tenant.refresh_from_db()
        audit(
            acting_user=acting_user,
            action="TENANT_MOVED",
            target=tenant,
            tenant=tenant,
            before={"path": old_name_path},
            after={"path": tenant.name_path},
        )
        # Labels and inherited admins below; both parents' quotas.
        change_record(
            TenantChange(
                tenants=[tenant],
                tenant_ids=[old_parent.pk] if old_parent else [],
                subtree=True,
                parents=True,
                reason="TENANT_MOVED",
            )
        )
    return tenant


def _volumes_stranded_by_move(tenant: Tenant, new_parent: Tenant | None) -> list[str]:
    """Refusals for volumes attached in `tenant`'s subtree whose share would no longer be granted above
    them under `new_parent`: grants inside the subtree move with it, those above it stay behind."""
    attachments = list(
        VolumeAttachment.objects.filter(tenant__path__startswith=tenant.path).select_related(
            "tenant", "volume__share"
        )
    )
    granted: defaultdict[int, list[str]] = defaultdict(list)
    for share_id, path in NfsShareGrant.objects.filter(
        share_id__in={a.volume.share_id for a in attachments}
    ).values_list("share_id", "tenant__path"):
        granted[share_id].append(path)
    above = Tenant.path_prefixes(new_parent.path) if new_parent is not None else []
    stranded: dict[str, str] = {}
    for attachment in attachments:
        paths_of_share = granted[attachment.volume.share_id]
        moving = [path for path in paths_of_share if path.startswith(tenant.path)]
        if not _granted(attachment.tenant.path, moving) and not set(paths_of_share) & set(above):
            stranded[attachment.volume.name] = attachment.volume.share.name
    if not stranded:
        return []
    where = f"{new_parent.name_path} or a tenant above it" if new_parent is not None else tenant.name_path
    volumes = ", ".join(f"{name} (share {share})" for name, share in sorted(stranded.items()))
    return [
        f"Volumes {volumes} would leave the tenants their NFS share is granted to; first a platform "
        f"admin grants the share to {where}, or the volumes go."
    ]


def _plan_allocation_specs(plan: QuotaPlan) -> list[AllocationSpec]:
    return [
        AllocationSpec(pool=row.pool, **{name: getattr(row, name) for name in ALLOCATION_FIELDS})
        for row in plan.allocations.select_related("pool__cluster")
    ]


def _plan_storage_specs(plan: QuotaPlan) -> list[StorageSpec]:
    return [
        StorageSpec(cluster=row.cluster, space_quota_bytes=row.space_quota_bytes, file_quota=row.file_quota)
        for row in plan.storage.select_related("cluster")
    ]


def tenant_apply_plan(*, acting_user: AbstractBaseUser, tenant: Tenant, plan: QuotaPlan) -> Tenant:
    """Copy a plan's allocations and storage quotas onto a tenant. Later edits to the plan do not
    touch the tenant."""
    require(acting_user, Action.MANAGE, tenant)
    with transaction.atomic():
        tenant = _locked_tenant(tenant)
        parent = _parent_of(tenant)
        for spec in _plan_allocation_specs(plan):
            _write_allocation(acting_user=acting_user, tenant=tenant, spec=spec, parent=parent)
        for spec in _plan_storage_specs(plan):
            existing = (
                StorageDirectory.objects.filter(tenant=tenant, cluster=spec.cluster).order_by("pk").first()
            )
            if existing is None:
                _storage_write(acting_user=acting_user, tenant=tenant, spec=spec)
            else:
                _storage_update(
                    acting_user=acting_user,
                    directory=existing,
                    space_quota_bytes=spec.space_quota_bytes,
                    file_quota=spec.file_quota,
                )
        before_plan = tenant.plan_id
        tenant.plan = plan
        audited_save(
            tenant,
            acting_user=acting_user,
            action="TENANT_PLAN_APPLIED",
            tenant=tenant,
            before={"plan_id": before_plan},
            after=lambda applied: {"plan_id": applied.plan_id, "plan": plan.name},
            update_fields=["plan", "updated_at"],
        )
        change_record(TenantChange(tenants=[tenant], parents=True, reason="TENANT_PLAN_APPLIED"))
    return tenant


# ---------------------------------------------------------------------------------------------
# Storage (HDFS directories)


def hdfs_root() -> str:
    """CANOPY_HDFS_ROOT in its plain form: every tenant's HDFS directories live below it."""
    return paths.plain_absolute(settings.CANOPY_HDFS_ROOT)


def default_storage_path(tenant: Tenant) -> str:
    """The tenant's own HDFS root, CANOPY_HDFS_ROOT/<tenant path>: its directories lie at or below it."""
    return posixpath.join(hdfs_root(), tenant.name_path)


def _storage_path_errors(tenant: Tenant, cluster: Cluster, path: str) -> list[str]:
    """Where `tenant` may have an HDFS directory on `cluster` (issue 15): a plain absolute path at or
    below its own root; not at or below the root of one of its sub-tenants (their namespace); not
    at, inside or around a directory of any tenant but itself and (around it) its ancestors and (inside
    it) its descendants. The first rule broken is named, with the root the tenant may use."""
    root = default_storage_path(tenant)
    problems = paths.absolute_path_problems(path, what="an HDFS path", example=root, forbidden=":")
    if problems:
        return problems
    if not paths.inside(path, root):
        return [
            f"{tenant.name_path}'s HDFS directories live at or below its root {root} "
            f"(CANOPY_HDFS_ROOT/<tenant path>); {path} is outside it."
        ]
    first = path[len(root) :].lstrip("/").partition("/")[0]
    if first and Tenant.objects.filter(name_path=f"{tenant.name_path}/{first}").exists():
        return [
            f"{root}/{first} is the root of sub-tenant {tenant.name_path}/{first}: directories there are "
            f"its own, not {tenant.name_path}'s. {tenant.name_path}'s go elsewhere below {root}."
        ]
    around = StorageDirectory.objects.filter(cluster=cluster, path__in=[path, *paths.ancestors(path)])
    for directory in around.select_related("tenant").order_by("-path"):
        if directory.path == path:
            return [f"{path} is already a tenant directory on {cluster}."]
        if not tenant.path.startswith(directory.tenant.path):
            return [
                f"{path} would lie inside {directory.path}, a directory of another tenant; "
                f"{tenant.name_path}'s directories stay out of other tenants' (below {root})."
            ]
    within = (
        StorageDirectory.objects.filter(cluster=cluster, path__startswith=f"{path}/")
        .exclude(tenant__path__startswith=tenant.path)
        .order_by("path")
        .first()
    )
    if within is not None:
        return [
            f"{path} would contain {within.path}, a directory of another tenant; "
            f"{tenant.name_path}'s directories stay out of other tenants' (below {root})."
        ]
    return []


def _storage_write(*, acting_user: AbstractBaseUser, tenant: Tenant, spec: StorageSpec) -> StorageDirectory:
    errors = _errors()
    if spec.cluster.kind != Cluster.Kind.YARN:
        errors["cluster"].append(
            f"{spec.cluster} is not a Hadoop cluster; HDFS directories live on Hadoop clusters."
        )
        _raise_if(errors)
    # One writer of a cluster's directories at a time: the checks below read the others' paths.
    Cluster.objects.select_for_update().filter(pk=spec.cluster.pk).first()
    path = spec.path or default_storage_path(tenant)
    errors["path"].extend(_storage_path_errors(tenant, spec.cluster, path))
    _raise_if({k: v for k, v in errors.items() if v})
    directory = StorageDirectory(
        tenant=tenant,
        cluster=spec.cluster,
        path=path,
        space_quota_bytes=spec.space_quota_bytes,
        file_quota=spec.file_quota,
    )
    audited_save(
        directory, acting_user=acting_user, action="STORAGE_CREATED", tenant=tenant, after=STORAGE_FIELDS
    )
    return directory


def storage_create(*, acting_user: AbstractBaseUser, tenant: Tenant, spec: StorageSpec) -> StorageDirectory:
    require(acting_user, Action.MANAGE, tenant)
    with transaction.atomic():
        directory = _storage_write(acting_user=acting_user, tenant=_locked_tenant(tenant), spec=spec)
        change_record(TenantChange(tenants=[directory.tenant], reason="STORAGE_CREATED"))
        return directory


def _storage_update(
    *,
    acting_user: AbstractBaseUser,
    directory: StorageDirectory,
    space_quota_bytes: int | None,
    file_quota: int | None,
) -> StorageDirectory:
    before = snapshot(directory, STORAGE_FIELDS)
    directory.space_quota_bytes = space_quota_bytes
    directory.file_quota = file_quota
    audited_save(
        directory,
        acting_user=acting_user,
        action="STORAGE_UPDATED",
        tenant=directory.tenant,
        before=before,
        after=STORAGE_FIELDS,
    )
    return directory


def storage_update(
    *,
    acting_user: AbstractBaseUser,
    directory: StorageDirectory,
    space_quota_bytes: int | None,
    file_quota: int | None,
) -> StorageDirectory:
    """Change a directory's quotas (None: unlimited). The path is fixed once created."""
    require(acting_user, Action.MANAGE, directory.tenant)
    with transaction.atomic():
        directory = StorageDirectory.objects.select_for_update().select_related("tenant").get(pk=directory.pk)
        directory = _storage_update(
            acting_user=acting_user,
            directory=directory,
            space_quota_bytes=space_quota_bytes,
            file_quota=file_quota,
        )
        change_record(TenantChange(tenants=[directory.tenant], reason="STORAGE_UPDATED"))
        return directory


def storage_delete(*, acting_user: AbstractBaseUser, directory: StorageDirectory) -> None:
    require(acting_user, Action.MANAGE, directory.tenant)
    with transaction.atomic():
        audited_delete(
            directory,
            acting_user=acting_user,
            action="STORAGE_DELETED",
            tenant=directory.tenant,
            before=snapshot(directory, STORAGE_FIELDS),
        )
        # The directory and its data stay on HDFS (like a Retain volume); the push stops managing it.
        change_record(TenantChange(tenants=[directory.tenant], reason="STORAGE_DELETED"))


# ---------------------------------------------------------------------------------------------
# NFS shares: which server and directory volumes may use is the platform's decision (issue 15)

NFS_SHARE_FIELDS = ("name", "server", "base_path", "description")
_HOST_NAME = re.compile(
    r"(?=.{1,253}\Z)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*", re.IGNORECASE
)


def _nfs_share_snapshot(share: NfsShare) -> dict[str, Any]:
    return {"cluster": share.cluster.name, **snapshot(share, NFS_SHARE_FIELDS)}


def _nfs_server_errors(server: str) -> list[str]:
    try:
        validate_ipv46_address(server)
        return []
    except ValidationError:
        pass
    if _HOST_NAME.fullmatch(server):
        return []
    return ["Name the NFS server by its host name (e.g. nas.example.com) or its IP address."]


def _nfs_share_errors(share: NfsShare, *, creating: bool) -> dict[str, list[str]]:
    errors = _errors()
    if creating:
        try:
            dns_label_validator(share.name)
        except ValidationError as exc:
            errors["name"].extend(exc.messages)
        if share.cluster.kind != Cluster.Kind.KUBERNETES:
            errors["cluster"].append(
                f"{share.cluster} is not a Kubernetes cluster; NFS shares are mounted on Kubernetes."
            )
        elif NfsShare.objects.filter(cluster=share.cluster, name=share.name).exists():
            errors["name"].append(f"A share named {share.name} already exists on {share.cluster}.")
    errors["server"].extend(_nfs_server_errors(share.server))
    errors["base_path"].extend(
        paths.absolute_path_problems(
            share.base_path, what="the share's base path", example="/export/team-data"
        )
    )
    if not errors["base_path"] and share.pk:
        too_long = [
            volume.name
            for volume in share.volumes.order_by("name")
            if len(share.directory(volume.sub_path)) > paths.PATH_MAX
        ]
        if too_long:
            errors["base_path"].append(
                f"The directories of volumes {', '.join(too_long)} would be longer than {paths.PATH_MAX} characters."
            )
    return {key: value for key, value in errors.items() if value}


def _locked_share(share: NfsShare) -> NfsShare:
    """The share's row, locked: its grants and its volumes' directories change one writer at a time."""
    return NfsShare.objects.select_for_update().select_related("cluster").get(pk=share.pk)


def _tenants_mounting(share: NfsShare) -> list[Tenant]:
    return list(Tenant.objects.filter(volume_attachments__volume__share=share).distinct())


def nfs_share_create(*, acting_user: AbstractBaseUser, spec: NfsShareSpec) -> NfsShare:
    """Register an NFS export of a Kubernetes cluster. Usable by no tenant until it is granted."""
    require_platform_admin(acting_user)
    share = NfsShare(
        cluster=spec.cluster,
        name=spec.name,
        server=spec.server,
        base_path=spec.base_path,
        description=spec.description,
    )
    with transaction.atomic():
        _raise_if(_nfs_share_errors(share, creating=True))
        audited_save(
            share, acting_user=acting_user, action="NFS_SHARE_CREATED", tenant=None, after=_nfs_share_snapshot
        )
    return share


def nfs_share_update(
    *,
    acting_user: AbstractBaseUser,
    share: NfsShare,
    server: str | None = None,
    base_path: str | None = None,
    description: str | None = None,
) -> NfsShare:
    """Change a share's server, base path or description. Its volumes follow: every tenant that
    mounts one gets its PersistentVolumes pushed again (see docs/provisioning.md on changing a
    pushed volume's NFS source)."""
    require_platform_admin(acting_user)
    with transaction.atomic():
        share = _locked_share(share)
        before = _nfs_share_snapshot(share)
        for name, value in (("server", server), ("base_path", base_path), ("description", description)):
            if value is not None:
                setattr(share, name, value)
        _raise_if(_nfs_share_errors(share, creating=False))
        audited_save(
            share,
            acting_user=acting_user,
            action="NFS_SHARE_UPDATED",
            tenant=None,
            before=before,
            after=_nfs_share_snapshot,
        )
        if (share.server, share.base_path) != (before["server"], before["base_path"]):
            change_record(TenantChange(tenants=_tenants_mounting(share), reason="NFS_SHARE_UPDATED"))
    return share


def nfs_share_delete(*, acting_user: AbstractBaseUser, share: NfsShare) -> None:
    """Forget a share (and its grants). Refused while volumes use it: they are named."""
    require_platform_admin(acting_user)
    with transaction.atomic():
        share = _locked_share(share)
        volumes = list(share.volumes.order_by("name").values_list("name", flat=True))
        if volumes:
            raise ValidationError(
                {
                    "share": [
                        f"Share {share} is still used by volumes {', '.join(volumes)}; delete those first."
                    ]
                }
            )
        audit(
            acting_user=acting_user,
            action="NFS_SHARE_DELETED",
            target=share,
            tenant=None,
            before={
                **_nfs_share_snapshot(share),
                "granted_to": list(
                    share.grants.order_by("tenant__path").values_list("tenant__name_path", flat=True)
                ),
            },
        )
        share.delete()


def nfs_share_grant(*, acting_user: AbstractBaseUser, share: NfsShare, tenant: Tenant) -> NfsShareGrant:
    """Let the admins above `tenant` (and, inside it, its own admins) carve volumes out of `share` for
    `tenant` and every tenant below it."""
    require_platform_admin(acting_user)
    with transaction.atomic():
        share = _locked_share(share)
        if NfsShareGrant.objects.filter(share=share, tenant=tenant).exists():
            raise ValidationError({"tenant": [f"Share {share} is already granted to {tenant.name_path}."]})
        grant = NfsShareGrant.objects.create(share=share, tenant=tenant)
        audit(
            acting_user=acting_user,
            action="NFS_SHARE_GRANTED",
            target=grant,
            tenant=tenant,
            after={"share": share.name, "server": share.server, "base_path": share.base_path},
        )
    return grant


def _granted(tenant_path: str, granted_paths: Iterable[str]) -> bool:
    """Whether a share granted at these tree paths reaches the tenant at `tenant_path`."""
    return any(tenant_path.startswith(granted) for granted in granted_paths)


def nfs_share_revoke(*, acting_user: AbstractBaseUser, grant: NfsShareGrant) -> None:
    """Take a share back from a tenant. Refused while a volume of the share is attached to a tenant
    that only this grant reaches: those volumes are named."""
    require_platform_admin(acting_user)
    with transaction.atomic():
        share = _locked_share(grant.share)
        grant = NfsShareGrant.objects.select_related("tenant").get(pk=grant.pk)
        others = list(share.grants.exclude(pk=grant.pk).values_list("tenant__path", flat=True))
        stranded = sorted(
            {
                attachment.volume.name
                for attachment in VolumeAttachment.objects.filter(volume__share=share).select_related(
                    "volume", "tenant"
                )
                if not _granted(attachment.tenant.path, others)
            }
        )
        if stranded:
            raise ValidationError(
                {
                    "tenant": [
                        f"Volumes {', '.join(stranded)} of share {share} are attached to tenants only this "
                        f"grant to {grant.tenant.name_path} reaches; delete them or grant the share to "
                        f"their tenants first."
                    ]
                }
            )
        audited_delete(
            grant,
            acting_user=acting_user,
            action="NFS_SHARE_REVOKED",
            tenant=grant.tenant,
            before={"share": share.name, "server": share.server, "base_path": share.base_path},
        )


# ---------------------------------------------------------------------------------------------
# Volumes


def _volume_share_errors(
    spec: VolumeSpec, volume: Volume | None, acting_user: AbstractBaseUser
) -> dict[str, list[str]]:
    """A volume is a directory of a share granted to (an ancestor-or-self of) every tenant it is
    attached to, at a plain relative sub-path, and (when its directory is chosen) never at, inside
    or around the directory of another volume of the share serving a tenant the user does not manage."""
    errors = _errors()
    share = spec.share
    if share is None:
        errors["share"].append("Name the NFS share the volume is a directory of.")
        return errors
    if volume is not None and share.cluster_id != volume.cluster_id:
        errors["share"].append(
            f"A volume stays on its cluster ({volume.cluster}); pick a share there or create a new volume."
        )
    errors["sub_path"].extend(
        paths.relative_path_problems(spec.sub_path, what="the sub-path", example="dev1")
    )
    if not errors["sub_path"] and len(share.directory(spec.sub_path)) > paths.PATH_MAX:
        errors["sub_path"].append(
            f"{share.base_path}/<sub-path> has at most {paths.PATH_MAX} characters; this one has "
            f"{len(share.directory(spec.sub_path))}."
        )
    granted_paths = list(share.grants.values_list("tenant__path", flat=True))
    outside = [tenant.name_path for tenant in spec.tenants if not _granted(tenant.path, granted_paths)]
    if outside:
        errors["share"].append(
            f"Share {share} is not granted to {', '.join(outside)} or a tenant above; volumes are "
            f"directories of shares granted to every tenant they are attached to, and platform admins "
            f"grant shares."
        )
    moved = volume is None or (volume.share_id, volume.sub_path) != (share.pk, spec.sub_path)
    if moved and not errors["sub_path"]:
        neighbours = Volume.objects.filter(share=share).exclude(pk=volume.pk if volume else None)
        overlapping = [v.pk for v in neighbours if paths.overlapping(spec.sub_path, v.sub_path)]
        served = Tenant.objects.filter(volume_attachments__volume__in=overlapping).distinct()
        if served.exclude(pk__in=visible_tenants(acting_user, Action.MANAGE)).exists():
            errors["sub_path"].append(
                f"{share.directory(spec.sub_path)} is, holds or lies inside the directory of another "
                f"volume of share {share} that serves tenants you do not manage; choose another sub-path."
            )
    return errors


def _volume_errors(
    spec: VolumeSpec, volume: Volume | None, acting_user: AbstractBaseUser
) -> dict[str, list[str]]:
    errors = _volume_share_errors(spec, volume, acting_user)
    try:
        dns_label_validator(spec.name)
    except ValidationError as exc:
        errors["name"].extend(exc.messages)
    if spec.capacity_bytes <= 0:
        errors["capacity"].append("A volume needs a capacity, e.g. 100Gi.")
    if spec.scope not in Volume.Scope.values:
        errors["scope"].append(f"Choose one of: {', '.join(Volume.Scope.values)}.")
    if spec.access_mode not in Volume.AccessMode.values:
        errors["access_mode"].append(f"Choose one of: {', '.join(Volume.AccessMode.values)}.")
    tenants = list(spec.tenants)
    if spec.scope == Volume.Scope.PRIVATE and len(tenants) != 1:
        errors["tenants"].append("A private volume belongs to exactly one tenant.")
    if spec.scope == Volume.Scope.SHARED and not tenants:
        errors["tenants"].append("Name the tenants that share this volume.")
    if len({t.pk for t in tenants}) != len(tenants):
        errors["tenants"].append("Each tenant is listed once.")
    if spec.share is not None:
        clash = Volume.objects.filter(cluster_id=spec.share.cluster_id, name=spec.name)
        if volume is not None:
            clash = clash.exclude(pk=volume.pk)
        if clash.exists():
            errors["name"].append(f"A volume named {spec.name} already exists on {spec.share.cluster}.")
    return {key: value for key, value in errors.items() if value}


def _claim_name(spec: VolumeSpec, tenant: Tenant) -> str:
    if tenant.pk in spec.claim_names:
        return spec.claim_names[tenant.pk]
    if spec.scope == Volume.Scope.PRIVATE:
        return spec.name
    return f"{spec.name}-{tenant.name}"


def _write_attachments(volume: Volume, spec: VolumeSpec) -> None:
    errors = _errors()
    wanted = {tenant.pk: (tenant, _claim_name(spec, tenant)) for tenant in spec.tenants}
    volume.attachments.exclude(tenant_id__in=wanted).delete()
    existing = {a.tenant_id: a for a in volume.attachments.all()}
    for tenant_id, (tenant, claim_name) in wanted.items():
        try:
            dns_label_validator(claim_name)
        except ValidationError:
            errors["claim_names"].append(
                f"The claim name {claim_name!r} for {tenant.name_path} is not a DNS-1123 label of at most 63 characters; "
                f"give it explicitly."
            )
            continue
        taken = VolumeAttachment.objects.filter(tenant=tenant, claim_name=claim_name).exclude(volume=volume)
        if taken.exists():
            errors["claim_names"].append(f"{tenant.name_path} already has a volume claim named {claim_name}.")
            continue
        attachment = existing.get(tenant_id)
        if attachment is None:
            VolumeAttachment.objects.create(volume=volume, tenant=tenant, claim_name=claim_name)
        elif attachment.claim_name != claim_name:
            attachment.claim_name = claim_name
            attachment.save()
    _raise_if(errors)


def _volume_audit_tenant(tenants: Sequence[Tenant]) -> Tenant | None:
    """The deepest tenant at or above all of `tenants`. A volume's audit row names every tenant it is
    attached to, so it is scoped there: only those who administer all of them read it (None:
    platform admins only)."""
    prefix = posixpath.commonprefix([tenant.path for tenant in tenants]) if tenants else ""
    prefix = prefix[: len(prefix) - len(prefix) % Tenant.steplen]
    if not prefix:
        return None
    return next((t for t in tenants if t.path == prefix), None) or Tenant.objects.get(path=prefix)


def _require_manage_all(acting_user: AbstractBaseUser, tenants: Iterable[Tenant]) -> None:
    for tenant in tenants:
        require(acting_user, Action.MANAGE, tenant)


VOLUME_SETTINGS = ("name", "sub_path", "capacity_bytes", "access_mode", "scope", "description")


def volume_create(*, acting_user: AbstractBaseUser, spec: VolumeSpec) -> Volume:
    """A directory of an NFS share for one tenant (private) or several (shared: one PV/PVC each,
    one directory)."""
    _require_manage_all(acting_user, spec.tenants)
    if not spec.tenants:
        require_platform_admin(acting_user)
    with transaction.atomic():
        if spec.share is not None:
            _locked_share(spec.share)
        _raise_if(_volume_errors(spec, None, acting_user))
        volume = Volume.objects.create(
            cluster=spec.share.cluster,
            share=spec.share,
            **{name: getattr(spec, name) for name in VOLUME_SETTINGS},
        )
        _write_attachments(volume, spec)
        audit(
            acting_user=acting_user,
            action="VOLUME_CREATED",
            target=volume,
            tenant=_volume_audit_tenant(spec.tenants),
            after=_volume_snapshot(volume),
        )
        change_record(TenantChange(tenants=spec.tenants, reason="VOLUME_CREATED"))
    return volume


def volume_update(*, acting_user: AbstractBaseUser, volume: Volume, spec: VolumeSpec) -> Volume:
    """Replace a volume's settings, its share and sub-path, and the tenants it is attached to. The
    user must manage every tenant it is attached to before and after."""
    current = list(Tenant.objects.filter(volume_attachments__volume=volume))
    _require_manage_all(acting_user, [*current, *spec.tenants])
    with transaction.atomic():
        # Both shares' rows, in id order: the old one's directory is given up, the new one's taken.
        share_ids = sorted({volume.share_id, *([spec.share.pk] if spec.share is not None else [])})
        list(NfsShare.objects.select_for_update().filter(pk__in=share_ids).order_by("pk"))
        volume = (
            Volume.objects.select_for_update().select_related("share__cluster", "cluster").get(pk=volume.pk)
        )
        _raise_if(_volume_errors(spec, volume, acting_user))
        before = _volume_snapshot(volume)
        volume.share = spec.share
        for name in VOLUME_SETTINGS:
            setattr(volume, name, getattr(spec, name))
        volume.save()
        _write_attachments(volume, spec)
        audit(
            acting_user=acting_user,
            action="VOLUME_UPDATED",
            target=volume,
            tenant=_volume_audit_tenant([*current, *spec.tenants]),
            before=before,
            after=_volume_snapshot(volume),
        )
        change_record(TenantChange(tenants=[*current, *spec.tenants], reason="VOLUME_UPDATED"))
    return volume


def volume_delete(*, acting_user: AbstractBaseUser, volume: Volume) -> None:
    current = list(Tenant.objects.filter(volume_attachments__volume=volume))
    _require_manage_all(acting_user, current)
    if not current:
        require_platform_admin(acting_user)
    with transaction.atomic():
        audited_delete(
            volume,
            acting_user=acting_user,
            action="VOLUME_DELETED",
            tenant=_volume_audit_tenant(current),
            before=_volume_snapshot(volume),
        )
        change_record(TenantChange(tenants=current, reason="VOLUME_DELETED"))


# ---------------------------------------------------------------------------------------------
# Quota plans


def _plan_write_entries(
    plan: QuotaPlan, allocations: Sequence[AllocationSpec], storage: Sequence[StorageSpec]
) -> None:
    errors = _errors()
    for spec in allocations:
        if refused := rules.entry_errors(str(spec.pool), spec.pool.is_yarn, spec.values()):
            errors["allocations"].extend(refused)
    for spec in storage:
        if spec.cluster.kind != Cluster.Kind.YARN:
            errors["storage"].append(f"{spec.cluster} is not a Hadoop cluster.")
    for key, messages in {
        **_listed_once([spec.pool for spec in allocations], "allocations", "Pool"),
        **_listed_once([spec.cluster for spec in storage], "storage", "Cluster"),
    }.items():
        errors[key].extend(messages)
    _raise_if(errors)
    plan.allocations.all().delete()
    plan.storage.all().delete()
    for spec in allocations:
        values = rules.with_defaults(spec.pool.is_yarn, spec.values())
        QuotaPlanAllocation.objects.create(plan=plan, pool=spec.pool, **values)
    for spec in storage:
        QuotaPlanStorage.objects.create(
            plan=plan,
            cluster=spec.cluster,
            space_quota_bytes=spec.space_quota_bytes,
            file_quota=spec.file_quota,
        )


def _plan_snapshot(plan: QuotaPlan) -> dict[str, Any]:
    return {
        "name": plan.name,
        "description": plan.description,
        "allocations": [
            {"pool": str(a.pool), **snapshot(a, ALLOCATION_FIELDS)}
            for a in plan.allocations.select_related("pool__cluster")
        ],
        "storage": [
            {"cluster": s.cluster.name, **snapshot(s, ("space_quota_bytes", "file_quota"))}
            for s in plan.storage.select_related("cluster")
        ],
    }


def plan_create(
    *,
    acting_user: AbstractBaseUser,
    name: str,
    description: str = "",
    allocations: Sequence[AllocationSpec] = (),
    storage: Sequence[StorageSpec] = (),
) -> QuotaPlan:
    require_platform_admin(acting_user)
    plan = QuotaPlan(name=name, description=description)
    plan.full_clean()
    with transaction.atomic():
        plan.save()
        _plan_write_entries(plan, allocations, storage)
        audit(
            acting_user=acting_user,
            action="PLAN_CREATED",
            target=plan,
            tenant=None,
            after=_plan_snapshot(plan),
        )
    return plan


def plan_update(
    *,
    acting_user: AbstractBaseUser,
    plan: QuotaPlan,
    description: str | None = None,
    allocations: Sequence[AllocationSpec] | None = None,
    storage: Sequence[StorageSpec] | None = None,
) -> QuotaPlan:
    """Change a plan. Tenants created from it keep what they were given."""
    require_platform_admin(acting_user)
    with transaction.atomic():
        plan = QuotaPlan.objects.select_for_update().get(pk=plan.pk)
        before = _plan_snapshot(plan)
        if description is not None:
            plan.description = description
            plan.save()
        if allocations is not None or storage is not None:
            _plan_write_entries(
                plan,
                allocations if allocations is not None else _plan_allocation_specs(plan),
                storage if storage is not None else _plan_storage_specs(plan),
            )
        audit(
            acting_user=acting_user,
            action="PLAN_UPDATED",
            target=plan,
            tenant=None,
            before=before,
            after=_plan_snapshot(plan),
        )
    return plan


def plan_delete(*, acting_user: AbstractBaseUser, plan: QuotaPlan) -> None:
    require_platform_admin(acting_user)
    with transaction.atomic():
        audited_delete(
            plan, acting_user=acting_user, action="PLAN_DELETED", tenant=None, before=_plan_snapshot(plan)
        )


# ---------------------------------------------------------------------------------------------
# Memberships


def _membership_subject(membership: Membership) -> dict[str, str]:
    """How an audit row names a membership's subject: {"user": name} or {"group": name}."""
    return {membership.subject_kind: membership.subject_name}


def _membership_role(membership: Membership) -> dict[str, str]:
    return {**_membership_subject(membership), "role": membership.role}


def membership_grant(
    *,
    acting_user: AbstractBaseUser,
    tenant: Tenant,
    role: str,
    user: AbstractBaseUser | None = None,
    group: Group | str | None = None,
) -> Membership:
    """Give a user or a group (a Group or a group name) a role on a tenant. A group named here that
    does not exist yet is created, so a directory group can be granted before anyone of it signs in."""
    require(acting_user, Action.ADMINISTER, tenant)
    if (user is None) == (group is None):
        raise ValidationError({"user": ["Give either a user or a group."]})
    if role not in Membership.Role.values:
        raise ValidationError({"role": [f"Choose one of: {', '.join(Membership.Role.values)}."]})
    if user is not None and not user.is_active:
        raise ValidationError({"user": [f"{user.get_username()} is deactivated."]})
    if isinstance(group, str):
        group = group.strip()
    # A role ends up in YARN and HDFS ACLs and Kubernetes bindings by name: a name those read as
    # syntax ("*", "a,b", "x:rwx") would give the role to others (tenants.cluster_names).
    if user is not None:
        field, name = "user", user.get_username()
    else:
        field, name = "group", group if isinstance(group, str) else group.name
    if problem := name_problem(name):
        raise ValidationError({field: [problem]})
    with transaction.atomic():
        tenant = _locked_tenant(tenant)
        if isinstance(group, str):
            group, _ = Group.objects.get_or_create(name=group)
        subject = {"user": user} if user is not None else {"group": group}
        existing = Membership.objects.filter(tenant=tenant, **subject).first()
        if existing is not None:
            raise ValidationError(
                {
                    field: [
                        f"{name} is already {existing.role} of {tenant.name_path}; change the role instead."
                    ]
                }
            )
        try:
            with transaction.atomic():
                membership = Membership.objects.create(tenant=tenant, role=role, **subject)
        except IntegrityError as exc:
            raise ValidationError({field: [f"{name} already has a role on {tenant.name_path}."]}) from exc
        audit(
            acting_user=acting_user,
            action="MEMBERSHIP_GRANTED",
            target=membership,
            tenant=tenant,
            after={field: name, "role": role},
        )
        change_record(
            TenantChange(tenants=[tenant], subtree=reaches_below(role), reason="MEMBERSHIP_GRANTED")
        )
    return membership


def membership_change_role(*, acting_user: AbstractBaseUser, membership: Membership, role: str) -> Membership:
    require(acting_user, Action.ADMINISTER, membership.tenant)
    if role not in Membership.Role.values:
        raise ValidationError({"role": [f"Choose one of: {', '.join(Membership.Role.values)}."]})
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update(of=("self",))
            .select_related("tenant", "user", "group")
            .get(pk=membership.pk)
        )
        before = membership.role
        membership.role = role
        audited_save(
            membership,
            acting_user=acting_user,
            action="MEMBERSHIP_CHANGED",
            tenant=membership.tenant,
            before={**_membership_subject(membership), "role": before},
            after=_membership_role,
        )
        change_record(
            TenantChange(
                tenants=[membership.tenant],
                subtree=reaches_below(before) or reaches_below(role),
                reason="MEMBERSHIP_CHANGED",
            )
        )
    return membership


def membership_revoke(*, acting_user: AbstractBaseUser, membership: Membership) -> None:
    require(acting_user, Action.ADMINISTER, membership.tenant)
    with transaction.atomic():
        audited_delete(
            membership,
            acting_user=acting_user,
            action="MEMBERSHIP_REVOKED",
            tenant=membership.tenant,
            before=_membership_role(membership),
        )
        change_record(
            TenantChange(
                tenants=[membership.tenant],
                subtree=reaches_below(membership.role),
                reason="MEMBERSHIP_REVOKED",
            )
        )


def user_groups_mirror(
    *, user: AbstractBaseUser, names: Sequence[str], source: str, skipped: Sequence[str] = ()
) -> list[Group]:
    """Set the user's groups to exactly `names`, creating the groups that do not exist yet, as the
    identity provider (`source`: "ldap" or "oidc") said at sign-in; no acting user. `skipped`: the
    upstream names left out because a cluster cannot hold them, listed in the audit row.

    A change of groups is a change of roles: it gets one audit row (GROUPS_MIRRORED) naming the
    groups joined and left and the roles that come or go with them, and the affected tenants are
    pushed again. A name a cluster cannot hold is refused here as everywhere else."""
    if problems := [problem for name in names if (problem := name_problem(name))]:
        raise ValidationError({"groups": problems})
    wanted = list(names)
    with transaction.atomic():
        before = set(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
        existing = {group.name: group for group in Group.objects.filter(name__in=wanted)}
        for name in wanted:
            if name not in existing:
                existing[name], _ = Group.objects.get_or_create(name=name)
        groups = [existing[name] for name in wanted]
        user.groups.set(groups)  # type: ignore[attr-defined]
        joined, left = sorted(set(wanted) - before), sorted(before - set(wanted))
        if joined or left:
            roles = list(
                Membership.objects.filter(group__name__in=[*joined, *left])
                .select_related("tenant", "group")
                .order_by("tenant__path", "group__name")
            )
            changes = [
                {
                    "tenant": row.tenant.name_path,
                    "group": row.group.name,
                    "role": row.role,
                    "change": "gained" if row.group.name in joined else "lost",
                }
                for row in roles
            ]
            audit(
                acting_user=None,
                action="GROUPS_MIRRORED",
                target=user,
                tenant=None,
                before={"groups": sorted(before)},
                after={
                    "groups": wanted,
                    "source": source,
                    "joined": joined,
                    "left": left,
                    "roles": changes,
                    "skipped": list(skipped),
                },
            )
            # The tenants where a joined or left group holds a role get this person's service
            # account and bindings added or removed, like any other membership change (an admin's
            # reach every namespace below).
            change_record(
                TenantChange(
                    reason="GROUPS_MIRRORED",
                    tenants=[row.tenant for row in roles if reaches_below(row.role)],
                    tenant_ids=[row.tenant_id for row in roles],
                    subtree=True,
                )
            )
    return groups


# ---------------------------------------------------------------------------------------------
# Users (platform admins)

USER_FIELDS = ("username", "email", "first_name", "last_name", "is_staff", "is_active")


def user_create(
    *,
    acting_user: AbstractBaseUser,
    username: str,
    password: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    is_staff: bool = False,
) -> AbstractBaseUser:
    require_platform_admin(acting_user)
    if problem := name_problem(username):
        raise ValidationError({"username": [problem]})
    user = User(username=username, email=email, first_name=first_name, last_name=last_name, is_staff=is_staff)
    user.full_clean(exclude=["password"])
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    with transaction.atomic():
        audited_save(user, acting_user=acting_user, action="USER_CREATED", tenant=None, after=USER_FIELDS)
    return user


def user_update(*, acting_user: AbstractBaseUser, user: AbstractBaseUser, **changes: Any) -> AbstractBaseUser:
    require_platform_admin(acting_user)
    unknown = set(changes) - set(USER_FIELDS) - {"password"}
    if unknown:
        raise ValidationError({name: ["This field cannot be changed."] for name in unknown})
    if user.pk == acting_user.pk and (changes.get("is_staff") is False or changes.get("is_active") is False):
        raise ValidationError(
            {"is_staff": ["You cannot remove your own platform admin rights or deactivate yourself."]}
        )
    password = changes.pop("password", None)
    renamed = "username" in changes and changes["username"] != user.get_username()
    if renamed and (problem := name_problem(changes["username"])):
        raise ValidationError({"username": [problem]})
    with transaction.atomic():
        before = snapshot(user, USER_FIELDS)
        for name, value in changes.items():
            setattr(user, name, value)
        user.full_clean(exclude=["password"])
        if password:
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise ValidationError({"password": exc.messages}) from exc
            user.set_password(password)
        user.save()
        after = snapshot(user, USER_FIELDS)
        if password:
            after["password"] = "reset"  # nosec B105 # the audit row says a password was reset, never which
        audit(
            acting_user=acting_user,
            action="USER_UPDATED",
            target=user,
            tenant=None,
            before=before,
            after=after,
        )
        # Service accounts follow people.
        change_record(TenantChange(users=[user], reason="USER_UPDATED"))
    return user
