"""What must hold of every HDFS directory and NFS volume whatever was written before (issue 15), read
from the database: checked after each request of the API fuzz and each write of the property tests."""

from __future__ import annotations

import posixpath
import unicodedata

from django.conf import settings

from tenants.models import NfsShare, NfsShareGrant, StorageDirectory, Volume, VolumeAttachment


def _plain(path: str) -> bool:
    return not any(unicodedata.category(c).startswith("C") for c in path) and len(path) <= 1024


def _below_or_at(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def assert_directories_in_place() -> None:
    """Every directory at or below its tenant's root, in its plain form; one inside another belongs to
    the other's tenant or to a tenant below it."""
    root = "/" + posixpath.normpath(settings.CANOPY_HDFS_ROOT).strip("/")
    rows = list(
        StorageDirectory.objects.values_list("cluster_id", "path", "tenant__name_path", "tenant__path")
    )
    for cluster, path, name_path, tree_path in rows:
        assert _plain(path) and posixpath.normpath(path) == path and "//" not in path, path
        assert _below_or_at(path, posixpath.join(root, name_path)), (path, name_path)
        for other_cluster, around, _, other_tree_path in rows:
            if other_cluster == cluster and around != path and _below_or_at(path, around):
                assert tree_path.startswith(other_tree_path), (path, around)


def assert_volumes_in_place() -> None:
    """Every tenant a volume is attached to is reached by a grant of the volume's share; the volume is
    on its share's cluster, at a plain sub-path inside it."""
    granted: dict[int, list[str]] = {}
    for share_id, path in NfsShareGrant.objects.values_list("share_id", "tenant__path"):
        granted.setdefault(share_id, []).append(path)
    for share_id, tenant_path, volume in VolumeAttachment.objects.values_list(
        "volume__share_id", "tenant__path", "volume__name"
    ):
        assert any(tenant_path.startswith(path) for path in granted.get(share_id, [])), volume
    for volume in Volume.objects.select_related("share"):
        assert volume.cluster_id == volume.share.cluster_id, volume.name
        parts = volume.sub_path.split("/") if volume.sub_path else []
        assert _plain(volume.sub_path) and not {"", ".", ".."} & set(parts), volume.sub_path
    for share in NfsShare.objects.all():
        assert _plain(share.base_path) and posixpath.normpath(share.base_path) == share.base_path, (
            share.base_path
        )


def assert_storage_in_place() -> None:
    assert_directories_in_place()
    assert_volumes_in_place()
