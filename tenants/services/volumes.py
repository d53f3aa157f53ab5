"""Volumes: NFS directories of a share mounted by one tenant or shared by several."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import transaction

from tenants import paths
from tenants.audit import audit, audited_delete, snapshot
from tenants.changes import TenantChange, change_record
from tenants.models import (
    NfsShare,
    Tenant,
    Volume,
    VolumeAttachment,
    dns_label_validator,
)
from tenants.permissions import Action, AnyUser, require, require_platform_admin, visible_tenants
from tenants.services._common import _errors, _raise_if
from tenants.services.nfs_shares import _granted, _locked_share


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


def _volume_snapshot(volume: Volume) -> dict[str, Any]:
    data = {"share": volume.share.name, **snapshot(volume, VOLUME_FIELDS)}
    data["tenants"] = {
        a.tenant.name_path: a.claim_name
        for a in volume.attachments.select_related("tenant").order_by("tenant__path")
    }
    return data


def _volume_share_errors(
    spec: VolumeSpec, volume: Volume | None, acting_user: AnyUser
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
        neighbours = Volume.objects.filter(share=share)
        if volume is not None:
            neighbours = neighbours.exclude(pk=volume.pk)
        overlapping = [v.pk for v in neighbours if paths.overlapping(spec.sub_path, v.sub_path)]
        served = Tenant.objects.filter(volume_attachments__volume__in=overlapping).distinct()
        if served.exclude(pk__in=visible_tenants(acting_user, Action.MANAGE)).exists():
            errors["sub_path"].append(
                f"{share.directory(spec.sub_path)} is, holds or lies inside the directory of another "
                f"volume of share {share} that serves tenants you do not manage; choose another sub-path."
            )
    return errors


def _volume_errors(spec: VolumeSpec, volume: Volume | None, acting_user: AnyUser) -> dict[str, list[str]]:
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


def _require_manage_all(acting_user: AnyUser, tenants: Iterable[Tenant]) -> None:
    for tenant in tenants:
        require(acting_user, Action.MANAGE, tenant)


VOLUME_SETTINGS = ("name", "sub_path", "capacity_bytes", "access_mode", "scope", "description")


def volume_create(*, acting_user: AnyUser, spec: VolumeSpec) -> Volume:
    """A directory of an NFS share for one tenant (private) or several (shared: one PV/PVC each,
    one directory)."""
    _require_manage_all(acting_user, spec.tenants)
    if not spec.tenants:
        require_platform_admin(acting_user)
    with transaction.atomic():
        if spec.share is not None:
            _locked_share(spec.share)
        _raise_if(_volume_errors(spec, None, acting_user))
        share = cast(NfsShare, spec.share)  # `_volume_errors` refused a spec without one
        volume = Volume.objects.create(
            cluster=share.cluster,
            share=share,
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


def volume_update(*, acting_user: AnyUser, volume: Volume, spec: VolumeSpec) -> Volume:
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
        volume.share = cast(NfsShare, spec.share)  # `_volume_errors` refused a spec without one
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


def volume_delete(*, acting_user: AnyUser, volume: Volume) -> None:
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
