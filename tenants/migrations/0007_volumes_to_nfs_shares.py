"""Existing volumes get an NFS share each, so nothing a cluster mounts changes.

The choice: one share per distinct (cluster, server, export path), with that export path as its
base path, and every volume on it at sub-path "" (the base path itself). Each share is granted to
exactly the tenants its volumes are attached to: those tenants' admins above them keep managing the
volumes they had (a volume needs its share granted to an ancestor-or-self of every tenant it is
attached to), and nothing wider is opened. Grouping by a common parent directory (one share for
/share/dev1 and /share/dev2) or granting to a common ancestor would have let the admins of dev1's
tenant carve volumes out of dev2's directory: the very hole this replaces.

A share is named after the first (lowest id) of its volumes, unique per cluster since volume names
are. Its base path is the export path in its plain form (no trailing '/', '.' or '..' parts, the
same directory on a POSIX server). Each share and grant gets an audit row, written by "system".
The reverse puts the server and the full path back on each volume."""

import posixpath

from django.db import migrations


def _plain(path: str) -> str:
    if not path.startswith("/"):
        return path
    return "/" + posixpath.normpath(path).lstrip("/")


def volumes_to_shares(apps, schema_editor):
    Volume = apps.get_model("tenants", "Volume")
    VolumeAttachment = apps.get_model("tenants", "VolumeAttachment")
    NfsShare = apps.get_model("tenants", "NfsShare")
    NfsShareGrant = apps.get_model("tenants", "NfsShareGrant")
    AuditEvent = apps.get_model("tenants", "AuditEvent")
    shares = {}
    for volume in Volume.objects.order_by("pk"):
        key = (volume.cluster_id, volume.server, _plain(volume.export_path))
        share = shares.get(key)
        if share is None:
            share = NfsShare.objects.create(
                cluster_id=volume.cluster_id,
                name=volume.name,
                server=volume.server,
                base_path=key[2],
                description=f"Registered from volume {volume.name} when volumes moved onto shares.",
            )
            shares[key] = share
            AuditEvent.objects.create(
                actor_name="system",
                action="NFS_SHARE_CREATED",
                target_type="nfsshare",
                target_id=str(share.pk),
                target_repr=share.name,
                after={"name": share.name, "server": share.server, "base_path": share.base_path},
            )
        volume.share = share
        volume.sub_path = ""
        volume.save(update_fields=["share", "sub_path"])
        for attachment in VolumeAttachment.objects.filter(volume=volume).select_related("tenant"):
            grant, created = NfsShareGrant.objects.get_or_create(share=share, tenant=attachment.tenant)
            if created:
                AuditEvent.objects.create(
                    actor_name="system",
                    action="NFS_SHARE_GRANTED",
                    tenant=attachment.tenant,
                    tenant_path=attachment.tenant.name_path,
                    target_type="nfssharegrant",
                    target_id=str(grant.pk),
                    target_repr=f"{share.name} granted to {attachment.tenant.name_path}",
                    after={"share": share.name, "tenant": attachment.tenant.name_path},
                )


def shares_to_volumes(apps, schema_editor):
    Volume = apps.get_model("tenants", "Volume")
    for volume in Volume.objects.select_related("share"):
        base = volume.share.base_path
        volume.server = volume.share.server
        volume.export_path = f"{base.rstrip('/')}/{volume.sub_path}" if volume.sub_path else base
        volume.save(update_fields=["server", "export_path"])


class Migration(migrations.Migration):
    dependencies = [("tenants", "0006_nfs_shares")]

    operations = [migrations.RunPython(volumes_to_shares, shares_to_volumes)]
