"""A tenant's Hive database pushed to the real Hadoop mini cluster: its warehouse directory owned by
the tenant's group with the ACLs of the tenant's people and groups, no one else's; a removed link
leaves the directory and its data where they are."""

from __future__ import annotations

import pytest
import requests
from django.contrib.auth.models import Group

from provisioning import services
from provisioning.models import ClusterSyncStatus
from tenants import services as tenant_services
from tenants.models import TenantService
from tests.clusters.hadoop import HadoopTestCluster
from tests.provisioning.conftest import drain
from tests.provisioning.test_yarn_backend import webhdfs

pytestmark = [pytest.mark.hadoop, pytest.mark.django_db]

WAREHOUSE = "/warehouse/tablespace/managed/hive"


@pytest.fixture
def warehouse(hadoop: HadoopTestCluster, settings):
    settings.CANOPY_HIVE_WAREHOUSE_ROOT = WAREHOUSE
    yield WAREHOUSE
    requests.delete(
        f"{hadoop.webhdfs_url}/webhdfs/v1/warehouse",
        params={"op": "DELETE", "recursive": "true", "user.name": hadoop.user},
        timeout=60,
    )


def test_a_hive_database_is_pushed_as_its_warehouse_directory_with_the_tenants_acls(
    hadoop: HadoopTestCluster, yarn_world, warehouse: str
) -> None:
    w = yarn_world  # t1: admins usera and userc; t3: admin userb
    analysts = Group.objects.create(name="analysts")
    tenant_services.membership_grant(acting_user=w.admin, tenant=w.t1, group=analysts, role="member")
    sales = tenant_services.tenant_service_create(
        acting_user=w.admin,
        tenant=w.t1,
        cluster=w.cluster,
        kind=TenantService.Kind.HIVE_DATABASE,
        name="sales",
    )
    services.hadoop_connection_set(
        acting_user=w.admin,
        cluster=w.cluster,
        spec=services.HadoopConnectionSpec(
            rm_urls=hadoop.rm_url, webhdfs_urls=hadoop.webhdfs_url, user=hadoop.user
        ),
    )
    drain()

    statuses = ClusterSyncStatus.objects.filter(cluster=w.cluster).select_related("sync")
    assert {s.sync.tenant_path: s.state for s in statuses} == {"t1": "synced", "t2": "synced", "t3": "synced"}
    status = webhdfs(hadoop, "GET", f"{warehouse}/sales.db", "GETFILESTATUS").json()["FileStatus"]
    # With ACLs the group bits show the ACL's mask (rwx): what is granted is in the entries.
    assert (status["type"], status.get("aclBit")) == ("DIRECTORY", True)
    acl = webhdfs(hadoop, "GET", f"{warehouse}/sales.db", "GETACLSTATUS").json()["AclStatus"]
    assert (acl["owner"], acl["group"]) == ("hdfs", "t1")
    entries = set(acl["entries"])
    assert {
        "group:t1:rwx",
        "group:analysts:rwx",
        "user:usera:rwx",
        "user:userc:rwx",
        "default:group:t1:rwx",
        "default:group:analysts:rwx",
        "default:user:usera:rwx",
    } <= entries
    # Only t1's people: t3's admin gets nothing on t1's database.
    assert not [entry for entry in entries if "userb" in entry or ":t3:" in entry]

    # The link removed: the push stops managing the directory, which stays with its data.
    tenant_services.tenant_service_delete(acting_user=w.admin, service=sales)
    drain()
    assert ClusterSyncStatus.objects.get(cluster=w.cluster, sync__tenant_id=w.t1.pk).state == "synced"
    kept = webhdfs(hadoop, "GET", f"{warehouse}/sales.db", "GETFILESTATUS")
    assert kept.status_code == 200, kept.text
