"""Intents, namespaces, statuses and the export backend, without a cluster."""

from __future__ import annotations

import datetime

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from provisioning import services
from provisioning.models import (
    ClusterSyncStatus,
    HadoopConnection,
    KubernetesConnection,
    ProvisioningIntent,
    TenantSync,
)
from tenants import services as tenant_services
from tenants.models import Allocation, AuditEvent, Cluster, Membership
from tests.provisioning.conftest import drain
from tests.tenants.builders import spec, user

pytestmark = pytest.mark.django_db


def open_intents() -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for intent in ProvisioningIntent.objects.filter(state__in=services.OPEN).order_by("pk"):
        found.setdefault(intent.tenant_id, []).append(intent.reason)
    return found


def test_every_domain_change_records_an_intent_in_its_own_transaction(k8s_world):
    w = k8s_world
    ProvisioningIntent.objects.all().delete()
    tenant_services.allocation_set(acting_user=w.admin, tenant=w.dev1, spec=spec(w.pool, gpu=0))
    # dev1's quota, and department1's own share (what its children do not hold).
    assert open_intents() == {w.dev1.pk: ["ALLOCATION_SET"], w.department1.pk: ["ALLOCATION_SET"]}

    ProvisioningIntent.objects.all().delete()
    tenant_services.membership_grant(
        acting_user=w.admin, tenant=w.department1, user=user("ann"), role="admin"
    )
    # An admin's rights reach every namespace below.
    assert set(open_intents()) == {w.department1.pk, w.dev1.pk, w.dev2.pk}

    ProvisioningIntent.objects.all().delete()
    tenant_services.membership_grant(acting_user=w.admin, tenant=w.dev2, user=user("joe"), role="member")
    assert set(open_intents()) == {w.dev2.pk}


def test_a_refused_change_records_no_intent(k8s_world):
    w = k8s_world
    before = ProvisioningIntent.objects.count()
    with pytest.raises(ValidationError):
        tenant_services.allocation_set(acting_user=w.admin, tenant=w.dev1, spec=spec(w.pool, gpu=99))
    assert ProvisioningIntent.objects.count() == before


def test_intents_roll_back_with_the_change_and_are_queued_only_after_commit(
    k8s_world, django_capture_on_commit_callbacks
):
    w = k8s_world
    before = ProvisioningIntent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        tenant_services.tenant_update(acting_user=w.admin, tenant=w.dev1, description="x")
        raise RuntimeError
    assert ProvisioningIntent.objects.count() == before

    with django_capture_on_commit_callbacks() as callbacks:
        tenant_services.tenant_update(acting_user=w.admin, tenant=w.dev1, description="y")
    assert len(callbacks) == 1
    # Not connected and no export default: the push says so and finishes the intent.
    callbacks[0]()
    status = ClusterSyncStatus.objects.get(sync__tenant_id=w.dev1.pk)
    assert status.state == "pending" and "no connection" in status.message
    assert not ProvisioningIntent.objects.filter(tenant_id=w.dev1.pk, state__in=services.OPEN).exists()


def test_namespace_names_are_fixed_once_and_collisions_are_refused(k8s_world):
    w = k8s_world
    assert TenantSync.objects.get(tenant_id=w.dev1.pk).namespace == "department1-dev1"
    # Moving dev1 to level 1 changes its path, not its namespace.
    tenant_services.allocation_delete(acting_user=w.admin, allocation=w.dev1.allocations.get())
    moved = tenant_services.tenant_move(acting_user=w.admin, tenant=w.dev1, new_parent=None)
    assert moved.name_path == "dev1"
    assert TenantSync.objects.get(tenant_id=w.dev1.pk).namespace == "department1-dev1"
    # A new tenant whose namespace would be one already taken is refused, naming the field.
    department = tenant_services.tenant_create(acting_user=w.admin, parent=None, name="department1-dev1x")
    assert department  # a different name is fine
    with pytest.raises(ValidationError) as clash:
        tenant_services.tenant_create(acting_user=w.admin, parent=w.department1, name="dev1")
    assert "department1-dev1" in clash.value.message_dict["name"][0]
    tenant_services.tenant_create(acting_user=w.admin, parent=None, name="a-b")
    a = tenant_services.tenant_create(acting_user=w.admin, parent=None, name="a")
    with pytest.raises(ValidationError) as clash:
        tenant_services.tenant_create(acting_user=w.admin, parent=a, name="b")
    assert "tenant a-b already has" in clash.value.message_dict["name"][0]


def test_the_export_backend_writes_a_folder_per_tenant_and_removes_what_goes(k8s_world, settings, export_dir):
    w = k8s_world
    settings.CANOPY_PROVISIONING_DEFAULT_BACKEND = "export"
    tenant_services.volume_create(
        acting_user=w.admin,
        spec=tenant_services.VolumeSpec(
            share=w.share,
            sub_path="x",
            name="shared",
            capacity_bytes=2**30,
            scope="shared",
            tenants=[w.dev1, w.dev2],
        ),
    )
    drain()
    root = export_dir / "gpu-cluster"
    assert sorted(p.name for p in root.iterdir()) == ["department1", "department1-dev1", "department1-dev2"]
    files = sorted(p.name for p in (root / "department1-dev1").iterdir())
    assert files[0] == "00-namespace-department1-dev1.yaml" and "04-resourcequota-canopy-quota.yaml" in files
    quota = yaml.safe_load((root / "department1-dev1" / "04-resourcequota-canopy-quota.yaml").read_text())
    assert quota["spec"]["hard"] == {"requests.nvidia.com/gpu": "1"}
    # department1 holds 3 GPUs and its children hold all 3: its own namespace gets what is left.
    parent_quota = yaml.safe_load((root / "department1" / "04-resourcequota-canopy-quota.yaml").read_text())
    assert parent_quota["spec"]["hard"] == {"requests.nvidia.com/gpu": "0"}
    status = ClusterSyncStatus.objects.get(sync__tenant_id=w.dev1.pk)
    assert status.state == "synced" and "export backend: no cluster connected" in status.message

    # Bob leaves dev1: his ServiceAccount and binding files go, nothing else changes.
    tenant_services.membership_revoke(
        acting_user=w.admin, membership=Membership.objects.get(tenant=w.dev1, user=w.bob)
    )
    drain()
    assert not (root / "department1-dev1" / "01-serviceaccount-bob.yaml").exists()
    assert (root / "department1-dev1" / "01-serviceaccount-dev1-admin.yaml").exists()

    # Deleting dev2 (confirmed: its namespace goes with it) removes its folder.
    with pytest.raises(ValidationError) as unconfirmed:
        tenant_services.tenant_delete(acting_user=w.admin, tenant=w.dev2)
    assert "namespace department1-dev2 on gpu-cluster" in unconfirmed.value.message_dict["confirm"][0]
    tenant_services.tenant_delete(acting_user=w.admin, tenant=w.dev2, confirm=True)
    drain()
    assert not (root / "department1-dev2").exists()
    assert not TenantSync.objects.filter(tenant_id=w.dev2.pk).exists()  # the name is free again


def test_a_suspended_tenant_admits_no_new_pods(k8s_world, settings, export_dir):
    w = k8s_world
    settings.CANOPY_PROVISIONING_DEFAULT_BACKEND = "export"
    tenant_services.tenant_set_state(acting_user=w.admin, tenant=w.dev1, state="suspended")
    drain()
    quota = yaml.safe_load(
        (export_dir / "gpu-cluster/department1-dev1/04-resourcequota-canopy-quota.yaml").read_text()
    )
    assert quota["spec"]["hard"]["pods"] == "0"


def test_beat_redrives_due_intents_with_exponential_backoff(k8s_world, settings):
    w = k8s_world
    settings.CANOPY_PROVISIONING_RETRY_BASE_SECONDS = 10
    settings.CANOPY_PROVISIONING_REDRIVE_AFTER_SECONDS = 0
    assert [services._backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    settings.CANOPY_PROVISIONING_RETRY_MAX_SECONDS = 30
    assert services._backoff(10).total_seconds() == 30
    ProvisioningIntent.objects.all().delete()
    now = timezone.now()
    due = ProvisioningIntent.objects.create(
        tenant_id=w.dev1.pk, reason="X", next_attempt_at=now - datetime.timedelta(seconds=1)
    )
    later = ProvisioningIntent.objects.create(
        tenant_id=w.dev2.pk, reason="X", next_attempt_at=now + datetime.timedelta(hours=1)
    )
    assert services.intents_redrive() == [w.dev1.pk]
    due.refresh_from_db()
    later.refresh_from_db()
    assert due.state == "done"  # the eager task ran it (not connected: nothing to push)
    assert later.state == "pending"


def test_a_tenant_another_worker_is_pushing_is_retried_later(k8s_world):
    w = k8s_world
    TenantSync.objects.filter(tenant_id=w.dev1.pk).update(
        lease_owner="someone", lease_until=timezone.now() + datetime.timedelta(minutes=1)
    )
    with pytest.raises(services.RetryLater):
        services.tenant_reconcile(tenant_id=w.dev1.pk)
    assert ProvisioningIntent.objects.filter(tenant_id=w.dev1.pk, state="pending").exists()
    TenantSync.objects.filter(tenant_id=w.dev1.pk).update(
        lease_until=timezone.now() - datetime.timedelta(seconds=1)
    )
    services.tenant_reconcile(tenant_id=w.dev1.pk)  # an expired lease (a dead worker) is taken over
    assert not ProvisioningIntent.objects.filter(tenant_id=w.dev1.pk, state="pending").exists()


def test_credentials_are_encrypted_at_rest_and_never_audited(k8s_world):
    w = k8s_world
    services.connection_set(
        acting_user=w.admin,
        cluster=w.cluster,
        spec=services.ConnectionSpec(
            mode="token", server="https://10.0.0.91:6443", token="very-secret-token"
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT token FROM provisioning_kubernetesconnection WHERE cluster_id = %s", [w.cluster.pk]
        )
        [stored] = cursor.fetchone()
    assert "very-secret-token" not in stored and stored.startswith("gAAAA")  # a Fernet token
    assert KubernetesConnection.objects.get(cluster=w.cluster).token == "very-secret-token"
    from tenants.models import AuditEvent

    event = AuditEvent.objects.get(action="CONNECTION_CREATED")
    assert event.after["token_set"] is True and "very-secret-token" not in str(event.after)
    # Switching to a kubeconfig drops the token; a kubeconfig that would run commands is refused.
    with pytest.raises(ValidationError) as refused:
        services.connection_set(
            acting_user=w.admin,
            cluster=w.cluster,
            spec=services.ConnectionSpec(
                mode="kubeconfig",
                kubeconfig=yaml.safe_dump(
                    {
                        "current-context": "c",
                        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                        "clusters": [{"name": "k", "cluster": {"server": "https://k:6443"}}],
                        "users": [{"name": "u", "user": {"exec": {"command": "rm"}}}],
                    }
                ),
            ),
        )
    assert "runs a command" in refused.value.message_dict["kubeconfig"][0]
    assert KubernetesConnection.objects.get(cluster=w.cluster).token == "very-secret-token"


def test_connection_test_reports_the_exact_error(k8s_world):
    w = k8s_world
    services.connection_set(
        acting_user=w.admin,
        cluster=w.cluster,
        spec=services.ConnectionSpec(mode="token", server="https://127.0.0.1:1", token="t"),
    )
    check = services.connection_test(acting_user=w.admin, cluster=w.cluster)
    assert not check.ok and "Cannot reach the API server at https://127.0.0.1:1" in check.message
    with pytest.raises(ValidationError):
        services.connection_set(
            acting_user=w.admin,
            cluster=w.cluster,
            spec=services.ConnectionSpec(mode="token", server="not a url", token="t", ca_data="garbage"),
        )
    other = tenant_services.cluster_create(acting_user=w.admin, name="bigdata", kind=Cluster.Kind.YARN)
    with pytest.raises(ValidationError):
        services.connection_set(
            acting_user=w.admin, cluster=other, spec=services.ConnectionSpec(mode="export")
        )


def test_the_export_command_writes_one_tenant_or_all(k8s_world, tmp_path):
    from django.core.management import call_command

    call_command("export_manifests", "--tenant", "department1/dev2", "--output", str(tmp_path / "one"))
    assert [p.name for p in (tmp_path / "one" / "gpu-cluster").iterdir()] == ["department1-dev2"]
    call_command("export_manifests", "--output", str(tmp_path / "all"))
    assert sorted(p.name for p in (tmp_path / "all" / "gpu-cluster").iterdir()) == [
        "department1",
        "department1-dev1",
        "department1-dev2",
    ]
    # Nothing was stored: exporting is not pushing.
    assert not ClusterSyncStatus.objects.filter(state="synced").exists()


def test_preview_shows_what_a_change_would_do_before_it_is_made(k8s_world, settings, api):
    w = k8s_world
    settings.CANOPY_PROVISIONING_DEFAULT_BACKEND = "export"
    drain()
    allocation_before = list(w.dev2.allocations.values_list("gpu", "cpu_millicores", "memory_bytes"))
    response = api.as_user(w.people.dept_admin).post(
        f"/api/v1/tenants/{w.dev2.pk}/provisioning/preview/",
        {"pool": w.pool.pk, "gpu": 1, "cpu": "4"},
        format="json",
    )
    assert response.status_code == 200, response.content
    [preview] = response.json()
    assert preview["backend"] == "export" and preview["namespace"] == "department1-dev2"
    changes = {(c["action"], c["kind"], c["name"]): c["fields"] for c in preview["changes"]}
    fields = {
        f["path"]: (f["live"], f["desired"]) for f in changes[("update", "ResourceQuota", "canopy-quota")]
    }
    assert fields["spec.hard.requests.nvidia.com/gpu"] == ("2", "1")
    assert fields["spec.hard.requests.cpu"] == ("8", "4")
    assert fields["spec.hard.requests.memory"] == ("60Gi", None)  # memory becomes unlimited: the key goes
    assert preview["summary"]["update"] >= 1 and preview["summary"]["create"] == 0
    # Nothing was saved or queued.
    assert list(w.dev2.allocations.values_list("gpu", "cpu_millicores", "memory_bytes")) == allocation_before
    assert not ProvisioningIntent.objects.filter(state__in=services.OPEN).exists()
    # GET: the tenant as it is now is in sync.
    now = api.get(f"/api/v1/tenants/{w.dev2.pk}/provisioning/preview/").json()
    assert now[0]["changes"] == [] and now[0]["summary"]["unchanged"] > 0


def test_manifests_download_as_a_zip_with_a_folder_per_tenant(k8s_world, api):
    import io
    import zipfile

    response = api.as_user(k8s_world.people.dept_admin).get("/api/v1/provisioning/manifests/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert {name.split("/")[1] for name in names} == {"department1", "department1-dev1", "department1-dev2"}
    assert "gpu-cluster/department1-dev1/04-resourcequota-canopy-quota.yaml" in names
    mine = api.as_user(k8s_world.people.dev1_admin).get("/api/v1/provisioning/manifests/")
    assert {n.split("/")[1] for n in zipfile.ZipFile(io.BytesIO(mine.content)).namelist()} == {
        "department1-dev1"
    }


def test_a_groups_role_gives_each_active_member_a_service_account(k8s_world, settings, export_dir):
    from django.contrib.auth.models import Group

    w = k8s_world
    settings.CANOPY_PROVISIONING_DEFAULT_BACKEND = "export"
    ann, gone = user("ann"), user("gone", is_active=False)
    Group.objects.get_or_create(name="ml-team")[0].user_set.add(ann, gone)
    tenant_services.membership_grant(acting_user=w.admin, tenant=w.dev2, group="ml-team", role="member")
    drain()
    folder = export_dir / "gpu-cluster" / "department1-dev2"
    assert (folder / "01-serviceaccount-ann.yaml").exists()
    assert not (folder / "01-serviceaccount-gone.yaml").exists()
    binding = yaml.safe_load((folder / "03-rolebinding-canopy-member.yaml").read_text())
    assert [s["name"] for s in binding["subjects"]] == ["ann", "tom"]


def test_one_delete_forgets_a_kubernetes_or_a_hadoop_connection_and_pushes_its_tenants(
    api, k8s_world, yarn_world
):
    """Whichever kind the cluster is: its connection goes, one CONNECTION_DELETED row keeps what it
    was (never a secret), and every tenant on the cluster is pushed again; anyone but a platform
    admin changes nothing."""
    admin = k8s_world.admin
    services.connection_set(
        acting_user=admin,
        cluster=k8s_world.cluster,
        spec=services.ConnectionSpec(mode="token", server="https://127.0.0.1:9", token="not-a-real-token"),
    )
    services.hadoop_connection_set(
        acting_user=admin,
        cluster=yarn_world.cluster,
        spec=services.HadoopConnectionSpec(
            rm_urls="http://127.0.0.1:9", webhdfs_urls="http://127.0.0.1:9", user="canopy"
        ),
    )
    kubernetes = (
        k8s_world.cluster,
        "kubernetes-connections",
        KubernetesConnection,
        "server",
        "https://127.0.0.1:9",
    )
    hadoop = (yarn_world.cluster, "hadoop-connections", HadoopConnection, "rm_urls", "http://127.0.0.1:9")
    events = AuditEvent.objects.count()
    for cluster, endpoint, *_ in (kubernetes, hadoop):
        refused = api.as_user(k8s_world.people.dept_admin).delete(f"/api/v1/{endpoint}/{cluster.pk}/")
        assert refused.status_code == 403
    assert AuditEvent.objects.count() == events
    assert KubernetesConnection.objects.exists() and HadoopConnection.objects.exists()

    for cluster, endpoint, model, field, value in (kubernetes, hadoop):
        ProvisioningIntent.objects.all().delete()
        assert api.as_user(admin).delete(f"/api/v1/{endpoint}/{cluster.pk}/").status_code == 204
        assert not model.objects.filter(cluster=cluster).exists()
        event = AuditEvent.objects.filter(action="CONNECTION_DELETED").latest("pk")
        assert (event.target_id, event.before[field], event.after) == (str(cluster.pk), value, None)
        assert "not-a-real-token" not in str(event.before)
        on_cluster = set(Allocation.objects.filter(pool__cluster=cluster).values_list("tenant_id", flat=True))
        assert on_cluster and set(open_intents()) == on_cluster
    # Nothing left to forget: no row, no push.
    events = AuditEvent.objects.count()
    ProvisioningIntent.objects.all().delete()
    services.connection_delete(acting_user=admin, cluster=yarn_world.cluster)
    assert AuditEvent.objects.count() == events and not open_intents()
