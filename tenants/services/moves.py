"""Moving a tenant (and its subtree) under another parent: both paths locked, cycles refused."""

from __future__ import annotations

from collections import defaultdict

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Concat, Substr

from tenants import rules
from tenants.audit import audit
from tenants.changes import TenantChange, change_record
from tenants.models import (
    Allocation,
    NfsShareGrant,
    Tenant,
    VolumeAttachment,
)
from tenants.permissions import Action, AnyUser, require, require_platform_admin
from tenants.services._common import _errors, _lock_pools, _parent_of, _raise_if
from tenants.services.allocations import ALLOCATION_FIELDS, _allocation_errors
from tenants.services.nfs_shares import _granted
from tenants.services.tenants import _check_depth


def tenant_move(*, acting_user: AnyUser, tenant: Tenant, new_parent: Tenant | None) -> Tenant:
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
        if tenant.is_default:
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
