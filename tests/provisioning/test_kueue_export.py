"""The Kueue engine without a cluster: a connection in export mode writes the Kueue objects as files
(the embedded default's way), the manifest export and `manage.py export_manifests` include them,
the engine is a connection setting with a field error for anything else, and a pool's new selector
is pushed to its tenants."""

from __future__ import annotations

import io
import zipfile

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.core.management import call_command

from provisioning import services
from provisioning.models import ClusterSyncStatus, KubernetesConnection, ProvisioningIntent
from tenants import services as tenant_services
from tenants.models import AuditEvent
from tests.provisioning.conftest import drain
from tests.provisioning.kueue_schemas import validate

pytestmark = pytest.mark.django_db


def kueue_export(world) -> KubernetesConnection:
    return services.connection_set(
        acting_user=world.admin,
        cluster=world.cluster,
        spec=services.ConnectionSpec(mode="export", quota_engine="kueue"),
    )


def load(path):
    return yaml.safe_load(path.read_text())


def test_an_export_connection_with_the_kueue_engine_writes_the_clusters_and_each_tenants_kueue_objects(
    k8s_world, export_dir
):
    w = k8s_world
    tenant_services.pool_update(
        acting_user=w.admin, pool=w.pool, node_selector="node-role.kubernetes.io/worker="
    )
    kueue_export(w)
    drain()
    root = export_dir / "gpu-cluster"
    assert sorted(p.name for p in root.iterdir()) == [
        "_cluster",
        "department1",
        "department1-dev1",
        "department1-dev2",
    ]
    assert sorted(p.name for p in (root / "_cluster").iterdir()) == [
        "09-validatingadmissionpolicy-canopy-tenant-node-pools.yaml",
        "10-validatingadmissionpolicybinding-canopy-tenant-node-pools.yaml",
        "11-resourceflavor-canopy-default.yaml",
        "12-cohort-canopy-root.yaml",
    ]
    flavor = load(root / "_cluster" / "11-resourceflavor-canopy-default.yaml")
    assert flavor["spec"] == {"nodeLabels": {"node-role.kubernetes.io/worker": ""}}
    # department1 (3 GPUs, dev1 and dev2 hold them all) is a cohort with its own, empty, queue.
    cohort = load(root / "department1" / "12-cohort-department1.yaml")
    assert cohort["spec"]["parentName"] == "canopy-root"
    assert (
        load(root / "department1" / "13-clusterqueue-department1.yaml")["spec"]["cohortName"] == "department1"
    )
    queue = load(root / "department1-dev1" / "13-clusterqueue-department1-dev1.yaml")
    assert queue["spec"]["cohortName"] == "department1"
    assert queue["spec"]["resourceGroups"][0]["flavors"][0]["resources"][2] == {
        "name": "nvidia.com/gpu",
        "nominalQuota": "1",
        "borrowingLimit": "0",
    }
    assert load(root / "department1-dev1" / "14-localqueue-default.yaml")["spec"] == {
        "clusterQueue": "department1-dev1"
    }
    for path in root.rglob("*.yaml"):
        validate(load(path))
    status = ClusterSyncStatus.objects.get(sync__tenant_id=w.dev1.pk)
    assert status.state == "synced" and status.last_result["quota_engine"] == "kueue"

    # Back to ResourceQuotas alone: the Kueue files go with the next push.
    services.connection_set(
        acting_user=w.admin, cluster=w.cluster, spec=services.ConnectionSpec(mode="export")
    )
    drain()
    assert sorted(p.name for p in root.iterdir()) == ["department1", "department1-dev1", "department1-dev2"]
    assert not list(root.rglob("1[1-4]-*.yaml"))


def test_the_manifest_export_gives_platform_admins_the_clusters_objects_and_tenant_admins_their_own(
    k8s_world, api, tmp_path
):
    w = k8s_world
    kueue_export(w)

    def exported(person) -> set[str]:
        response = api.as_user(person).get("/api/v1/provisioning/manifests/")
        assert response.status_code == 200, response.content
        return set(zipfile.ZipFile(io.BytesIO(response.content)).namelist())

    everything = exported(w.admin)
    assert "gpu-cluster/_cluster/12-cohort-canopy-root.yaml" in everything
    assert "gpu-cluster/department1-dev1/13-clusterqueue-department1-dev1.yaml" in everything
    dev1_only = exported(w.people.dev1_admin)
    assert {path.split("/")[1] for path in dev1_only} == {"department1-dev1"}
    assert "gpu-cluster/department1-dev1/14-localqueue-default.yaml" in dev1_only

    call_command("export_manifests", "--output", str(tmp_path))
    assert (tmp_path / "gpu-cluster" / "_cluster" / "11-resourceflavor-canopy-default.yaml").is_file()
    assert (tmp_path / "gpu-cluster" / "department1-dev2" / "13-clusterqueue-department1-dev2.yaml").is_file()


def test_the_quota_engine_is_a_connection_setting_and_anything_else_is_a_field_error(k8s_world, api):
    w = k8s_world
    with pytest.raises(ValidationError) as refused:
        services.connection_set(
            acting_user=w.admin,
            cluster=w.cluster,
            spec=services.ConnectionSpec(mode="export", quota_engine="volcano"),
        )
    assert refused.value.message_dict["quota_engine"][0].startswith("Choose one of: resourcequota, kueue")
    assert not KubernetesConnection.objects.filter(cluster=w.cluster).exists()

    response = api.as_user(w.admin).post(
        "/api/v1/kubernetes-connections/",
        {"cluster": w.cluster.pk, "mode": "export", "quota_engine": "kueue"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["quota_engine"] == "kueue"
    audit = AuditEvent.objects.get(action="CONNECTION_CREATED")
    assert audit.after["quota_engine"] == "kueue"
    bad = api.as_user(w.admin).patch(
        f"/api/v1/kubernetes-connections/{w.cluster.pk}/", {"quota_engine": "fast"}, format="json"
    )
    assert bad.status_code == 400 and "quota_engine" in bad.json()


def test_a_pools_new_node_selector_is_pushed_to_the_tenants_in_it(k8s_world):
    w = k8s_world
    drain()
    tenant_services.pool_update(acting_user=w.admin, pool=w.pool, node_selector="gpu=a100")
    pushed = set(ProvisioningIntent.objects.filter(reason="POOL_UPDATED").values_list("tenant_id", flat=True))
    assert pushed == {w.department1.pk, w.dev1.pk, w.dev2.pk}
    ProvisioningIntent.objects.all().delete()
    tenant_services.pool_update(acting_user=w.admin, pool=w.pool, description="A100 nodes")
    assert not ProvisioningIntent.objects.exists()


def test_the_clusters_own_objects_have_a_status_for_platform_admins_and_show_in_a_preview_while_due(
    k8s_world, api
):
    w = k8s_world
    kueue_export(w)
    # Not pushed yet: a tenant's push would make them first, so its preview shows them.
    [preview] = services.tenant_preview(acting_user=w.admin, tenant=w.dev1)
    planned = {str(change.ref): change.action for change in preview.plan.changes}
    assert planned["ValidatingAdmissionPolicy canopy-tenant-node-pools"] == "create"
    assert planned["ResourceFlavor canopy-default"] == planned["Cohort canopy-root"] == "create"
    assert planned["ClusterQueue department1-dev1"] == "create"

    drain()
    rows = api.as_user(w.admin).get("/api/v1/provisioning/statuses/?tenant=0").json()["results"]
    assert [(r["tenant_path"], r["namespace"], r["state"], r["backend"]) for r in rows] == [
        ("(the cluster's own objects)", "", "synced", "export")
    ]
    assert (
        api.as_user(w.people.dept_admin).get("/api/v1/provisioning/statuses/?tenant=0").json()["results"]
        == []
    )

    # Applied from the same rendering: a preview (and a push) of a tenant is its own objects only.
    tenant_services.allocation_set(
        acting_user=w.admin,
        tenant=w.dev1,
        spec=tenant_services.AllocationSpec(pool=w.pool, gpu=1, cpu_millicores=2000, memory_bytes=None),
    )
    [preview] = services.tenant_preview(acting_user=w.admin, tenant=w.dev1)
    assert {change.ref.kind for change in preview.plan.changes} <= {
        "Namespace",
        "ResourceQuota",
        "LimitRange",
        "ClusterQueue",
    }
    assert "ClusterQueue" in {change.ref.kind for change in preview.plan.changes}
