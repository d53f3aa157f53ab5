"""NFS shares: which server and directory volumes may use is the platform's decision (issue 15)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from django.db import transaction

from tenants import paths
from tenants.audit import audit, audited_delete, audited_save, snapshot
from tenants.changes import TenantChange, change_record
from tenants.models import (
    Cluster,
    NfsShare,
    NfsShareGrant,
    Tenant,
    VolumeAttachment,
    dns_label_validator,
)
from tenants.permissions import AnyUser, require_platform_admin
from tenants.services._common import _errors, _raise_if


@dataclass
class NfsShareSpec:
    cluster: Cluster
    name: str
    server: str
    base_path: str
    description: str = ""


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


def nfs_share_create(*, acting_user: AnyUser, spec: NfsShareSpec) -> NfsShare:
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
    acting_user: AnyUser,
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


def nfs_share_delete(*, acting_user: AnyUser, share: NfsShare) -> None:
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


def nfs_share_grant(*, acting_user: AnyUser, share: NfsShare, tenant: Tenant) -> NfsShareGrant:
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


def nfs_share_revoke(*, acting_user: AnyUser, grant: NfsShareGrant) -> None:
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
