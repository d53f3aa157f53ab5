"""Tenants: create, update, suspend/resume, delete (with what a deletion would take along)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from tenants.audit import audit, audited_save, snapshot
from tenants.changes import NamespaceImpact, TenantChange, change_record, deletion_impact, name_check
from tenants.models import (
    Membership,
    QuotaPlan,
    Tenant,
    Volume,
    VolumeAttachment,
)
from tenants.permissions import Action, AnyUser, require, require_platform_admin
from tenants.services._common import _listed_once, _locked_tenant, _parent_of, _raise_if, _validate_name
from tenants.services.allocations import AllocationSpec, _allocation_snapshot, _write_allocation
from tenants.services.plans import _plan_allocation_specs, _plan_storage_specs
from tenants.services.storage import StorageSpec, _storage_write

TENANT_FIELDS = ("name", "name_path", "display_name", "description", "leaf", "state", "plan_id")


def _check_depth(depth: int, field_name: str = "parent") -> None:
    limit = settings.CANOPY_MAX_TENANT_DEPTH
    if depth > limit:
        raise ValidationError(
            {field_name: [f"The tenant tree is at most {limit} levels deep (CANOPY_MAX_TENANT_DEPTH)."]}
        )


def tenant_create(
    *,
    acting_user: AnyUser,
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
    acting_user: AnyUser,
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


def tenant_set_state(*, acting_user: AnyUser, tenant: Tenant, state: str) -> Tenant:
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


def tenant_delete(*, acting_user: AnyUser, tenant: Tenant, confirm: bool = False) -> None:
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
        if tenant.is_default:
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
