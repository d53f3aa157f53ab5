"""Which NFS server and directory a volume may use is the platform's decision (issue 15, point 2):
platform admins register shares and grant them to tenants; a volume is a directory of a share
granted to (a tenant above or at) every tenant it is attached to, at a plain relative sub-path, and
never at, inside or around the directory of a volume serving tenants its writer does not manage.
Removing what volumes still use is refused with the volumes named."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from provisioning.desired.kubernetes import ClusterSettings, tenant_objects
from provisioning.models import ProvisioningIntent, TenantSync
from provisioning.selectors import tenant_state
from tenants import services
from tenants.models import AuditEvent, NfsShare, NfsShareGrant, Tenant, Volume
from tests.tenants.builders import GI, TokenClient, nfs_share, spec, user

pytestmark = pytest.mark.django_db


def share_state() -> tuple:
    """Everything a refused call must leave as it was."""
    return (
        list(
            Volume.objects.order_by("pk").values_list("pk", "name", "share_id", "sub_path", "capacity_bytes")
        ),
        list(NfsShare.objects.order_by("pk").values_list("pk", "name", "server", "base_path", "description")),
        list(NfsShareGrant.objects.order_by("pk").values_list("pk", "share_id", "tenant_id")),
        AuditEvent.objects.count(),
        ProvisioningIntent.objects.count(),
    )


@pytest.fixture
def lab(k8s_world):
    """A second level-1 tenant, `lab`, whose admin Mallory runs lab/x: nothing to do with department1."""
    w = k8s_world
    mallory = user("mallory")
    lab = services.tenant_create(
        acting_user=w.admin, parent=None, name="lab", allocations=[spec(w.pool, gpu=0)]
    )
    services.membership_grant(acting_user=w.admin, tenant=lab, user=mallory, role="admin")
    x = services.tenant_create(acting_user=mallory, parent=lab, name="x", allocations=[spec(w.pool, gpu=0)])
    return mallory, lab, x


def post_volume(who, body: dict):
    return TokenClient().as_user(who).post("/api/v1/volumes/", body, format="json")


def volume_body(tenant: Tenant, **fields) -> dict:
    return {
        "name": "peek",
        "capacity": "1Gi",
        "scope": "private",
        "attachments": [{"tenant": tenant.pk}],
        **fields,
    }


def pv_paths(tenant: Tenant, cluster) -> set[tuple[str, str]]:
    state = tenant_state(tenant, TenantSync.objects.get(tenant_id=tenant.pk), cluster)
    objects = tenant_objects(ClusterSettings(name=cluster.name), state) if state else []
    return {
        (obj["spec"]["nfs"]["server"], obj["spec"]["nfs"]["path"])
        for obj in objects
        if obj["kind"] == "PersistentVolume"
    }


def test_a_tenant_admin_cannot_mount_someone_elses_nfs_export(k8s_world, lab):
    """The outside probe: Mallory, admin of an unrelated tenant, made a private volume for her
    sub-tenant on nas:/share/dev1 (Bob's dev1-public) and got a PV of it (201)."""
    w = k8s_world
    mallory, _, x = lab
    before = share_state()

    response = post_volume(
        mallory, volume_body(x, cluster=w.cluster.pk, server="nas.example.com", export_path="/share/dev1")
    )

    assert response.status_code == 400, response.content
    assert response.json() == {"share": ["This field is required."]}
    assert share_state() == before
    assert pv_paths(x, w.cluster) == set()
    # Department1's share does not exist for her; naming it is the same as naming nothing.
    response = post_volume(mallory, volume_body(x, share=w.share.pk, sub_path="dev1"))
    assert response.status_code == 400 and list(response.json()) == ["share"]
    assert "does not exist" in response.json()["share"][0]
    assert share_state() == before


def test_a_volume_is_a_plain_sub_directory_of_its_share(k8s_world, lab):
    w = k8s_world
    mallory, lab_tenant, x = lab
    share = nfs_share(w.admin, w.cluster, name="lab-nas", base_path="/exports/lab", granted_to=[lab_tenant])
    before = share_state()
    for sub_path, message in (
        ("../../share/dev1", "cannot contain '..': a volume stays inside its share"),
        ("data/../../other", "cannot contain '..'"),
        ("/share/dev1", "is relative to the share's base path, e.g. dev1"),
        ("data/", "plain form (data)"),
        ("data//x", "plain form (data/x)"),
        ("./data", "plain form (data)"),
        (".", "Leave the sub-path empty"),
        ("data\nx", "newlines or other control characters"),
        ("d" * 1025, "at most 1024 characters"),
        ("d" * 1012, "/exports/lab/<sub-path> has at most 1024 characters; this one has 1025"),
    ):
        response = post_volume(mallory, volume_body(x, share=share.pk, sub_path=sub_path))
        assert response.status_code == 400, (sub_path, response.content)
        assert list(response.json()) == ["sub_path"] and message in response.json()["sub_path"][0], sub_path
    assert share_state() == before

    created = post_volume(mallory, volume_body(x, share=share.pk, sub_path="x/data"))
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["share_name"], body["server"], body["export_path"], body["cluster"]) == (
        "lab-nas",
        "nas.example.com",
        "/exports/lab/x/data",
        w.cluster.pk,
    )
    assert pv_paths(x, w.cluster) == {("nas.example.com", "/exports/lab/x/data")}


def test_the_share_must_reach_every_tenant_the_volume_is_attached_to(k8s_world):
    w = k8s_world
    dev1_only = nfs_share(w.admin, w.cluster, name="dev1-nas", base_path="/dev1", granted_to=[w.dev1])
    dept_admin = w.people.dept_admin
    before = share_state()
    with pytest.raises(ValidationError) as refused:
        services.volume_create(
            acting_user=dept_admin,
            spec=services.VolumeSpec(
                share=dev1_only, name="both", capacity_bytes=GI, scope="shared", tenants=[w.dev1, w.dev2]
            ),
        )
    assert refused.value.message_dict["share"] == [
        "Share dev1-nas is not granted to department1/dev2 or a tenant above; volumes are directories of "
        "shares granted to every tenant they are attached to, and platform admins grant shares."
    ]
    assert share_state() == before
    # Granted to department1: the whole subtree may use it.
    shared = services.volume_create(
        acting_user=dept_admin,
        spec=services.VolumeSpec(
            share=w.share,
            sub_path="department1",
            name="department1-public",
            capacity_bytes=GI,
            scope="shared",
            tenants=[w.dev1, w.dev2],
        ),
    )
    assert shared.export_path == "/share/department1"
    # Attaching it to a tenant the share does not reach is refused on update too, for everyone.
    other = services.tenant_create(acting_user=w.admin, parent=None, name="other")
    before = share_state()
    with pytest.raises(ValidationError) as refused:
        services.volume_update(
            acting_user=w.admin,
            volume=shared,
            spec=services.VolumeSpec(
                share=w.share,
                sub_path="department1",
                name="department1-public",
                capacity_bytes=GI,
                scope="shared",
                tenants=[w.dev1, w.dev2, other],
            ),
        )
    assert "not granted to other" in refused.value.message_dict["share"][0]
    assert share_state() == before


def test_no_volume_at_inside_or_around_one_serving_tenants_the_writer_does_not_manage(k8s_world, lab):
    """A share granted to two unrelated subtrees is two sets of directories, not one pool of data."""
    w = k8s_world
    mallory, lab_tenant, x = lab
    services.nfs_share_grant(acting_user=w.admin, share=w.share, tenant=lab_tenant)
    services.volume_create(
        acting_user=w.people.dept_admin,
        spec=services.VolumeSpec(
            share=w.share, sub_path="dev1/data", name="dev1-data", capacity_bytes=GI, tenants=[w.dev1]
        ),
    )
    before = share_state()
    for sub_path in ("dev1/data", "dev1/data/inner", "dev1", ""):
        response = post_volume(mallory, volume_body(x, share=w.share.pk, sub_path=sub_path))
        assert response.status_code == 400, (sub_path, response.content)
        assert "serves tenants you do not manage" in response.json()["sub_path"][0]
        assert "dev1-data" not in response.content.decode() and "department1" not in response.content.decode()
    assert share_state() == before
    assert post_volume(mallory, volume_body(x, share=w.share.pk, sub_path="lab")).status_code == 201
    # Whoever manages every tenant a volume serves may nest or share its directory: a platform admin,
    # department1's admin for dev1's.
    services.volume_create(
        acting_user=w.people.dept_admin,
        spec=services.VolumeSpec(
            share=w.share, sub_path="dev1", name="dev1-all", capacity_bytes=GI, tenants=[w.dev2]
        ),
    )


def test_grants_and_shares_in_use_stay_and_the_volumes_are_named(k8s_world):
    w = k8s_world
    services.volume_create(
        acting_user=w.admin,
        spec=services.VolumeSpec(
            share=w.share, sub_path="dev1", name="dev1-public", capacity_bytes=GI, tenants=[w.dev1]
        ),
    )
    grant = NfsShareGrant.objects.get(share=w.share, tenant=w.department1)
    before = share_state()
    with pytest.raises(ValidationError) as refused:
        services.nfs_share_revoke(acting_user=w.admin, grant=grant)
    assert refused.value.message_dict["tenant"] == [
        "Volumes dev1-public of share nas are attached to tenants only this grant to department1 reaches; "
        "delete them or grant the share to their tenants first."
    ]
    with pytest.raises(ValidationError) as refused:
        services.nfs_share_delete(acting_user=w.admin, share=w.share)
    assert refused.value.message_dict["share"] == [
        "Share nas is still used by volumes dev1-public; delete those first."
    ]
    platform = TokenClient().as_user(w.admin)
    response = platform.delete(f"/api/v1/nfs-shares/{w.share.pk}/grants/{w.department1.pk}/")
    assert response.status_code == 400 and "dev1-public" in response.json()["tenant"][0]
    response = platform.delete(f"/api/v1/nfs-shares/{w.share.pk}/")
    assert response.status_code == 400 and "dev1-public" in response.json()["share"][0]
    assert share_state() == before

    # Granted to dev1 as well, department1's grant can go; then the volume, then the share.
    services.nfs_share_grant(acting_user=w.admin, share=w.share, tenant=w.dev1)
    assert platform.delete(f"/api/v1/nfs-shares/{w.share.pk}/grants/{w.department1.pk}/").status_code == 204
    services.volume_delete(acting_user=w.admin, volume=Volume.objects.get(name="dev1-public"))
    assert platform.delete(f"/api/v1/nfs-shares/{w.share.pk}/").status_code == 204
    assert list(
        AuditEvent.objects.filter(action__startswith="NFS_SHARE").values_list("action", "tenant__name_path")
    )[:3] == [
        ("NFS_SHARE_DELETED", None),
        ("NFS_SHARE_REVOKED", "department1"),
        ("NFS_SHARE_GRANTED", "department1/dev1"),
    ]
    assert not NfsShareGrant.objects.exists()


def test_changing_a_share_pushes_its_volumes_again(k8s_world):
    w = k8s_world
    services.volume_create(
        acting_user=w.admin,
        spec=services.VolumeSpec(
            share=w.share,
            sub_path="department1",
            name="public",
            capacity_bytes=GI,
            scope="shared",
            tenants=[w.dev1, w.dev2],
        ),
    )
    ProvisioningIntent.objects.all().delete()
    services.nfs_share_update(acting_user=w.admin, share=w.share, description="The NAS")
    assert not ProvisioningIntent.objects.exists()  # nothing a cluster sees changed

    response = (
        TokenClient()
        .as_user(w.admin)
        .patch(
            f"/api/v1/nfs-shares/{w.share.pk}/",
            {"server": "10.0.0.7", "base_path": "/srv/nfs"},
            format="json",
        )
    )
    assert response.status_code == 200, response.content
    assert set(ProvisioningIntent.objects.values_list("tenant_id", "reason")) == {
        (w.dev1.pk, "NFS_SHARE_UPDATED"),
        (w.dev2.pk, "NFS_SHARE_UPDATED"),
    }
    assert pv_paths(w.dev1, w.cluster) == {("10.0.0.7", "/srv/nfs/department1")}
    event = AuditEvent.objects.get(action="NFS_SHARE_UPDATED", after__server="10.0.0.7")
    assert (event.before["server"], event.after["base_path"]) == ("nas.example.com", "/srv/nfs")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("server", "nas example", "host name (e.g. nas.example.com) or its IP address"),
        ("server", "nas.example.com\n", "host name"),
        ("server", "-nas", "host name"),
        ("base_path", "share", "is absolute"),
        ("base_path", "/share/../etc", "plain form (/etc)"),
        ("base_path", "/share\n", "control characters"),
        ("base_path", "/" + "s" * 1024, "at most 1024 characters"),
        ("name", "Team NAS", "DNS-1123 label"),
    ],
)
def test_a_share_is_checked_with_field_errors(k8s_world, field, value, message):
    w = k8s_world
    body = {
        "cluster": w.cluster.pk,
        "name": "team-nas",
        "server": "10.1.2.3",
        "base_path": "/team",
        field: value,
    }
    before = share_state()
    response = TokenClient().as_user(w.admin).post("/api/v1/nfs-shares/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json() and message in " ".join(response.json()[field])
    assert share_state() == before


def test_shares_live_on_kubernetes_clusters_and_keep_their_cluster(k8s_world, yarn_world):
    w = k8s_world
    with pytest.raises(ValidationError) as refused:
        nfs_share(w.admin, yarn_world.cluster, name="hadoop-nas")
    assert "not a Kubernetes cluster" in refused.value.message_dict["cluster"][0]
    other = services.cluster_create(acting_user=w.admin, name="gpu2", kind="kubernetes")
    elsewhere = nfs_share(w.admin, other, name="nas2", granted_to=[w.department1])
    volume = services.volume_create(
        acting_user=w.admin,
        spec=services.VolumeSpec(share=w.share, sub_path="d", name="d", capacity_bytes=GI, tenants=[w.dev1]),
    )
    with pytest.raises(ValidationError) as refused:
        services.volume_update(
            acting_user=w.admin,
            volume=volume,
            spec=services.VolumeSpec(
                share=elsewhere, sub_path="d", name="d", capacity_bytes=GI, tenants=[w.dev1]
            ),
        )
    assert "A volume stays on its cluster (gpu-cluster)" in refused.value.message_dict["share"][0]
    with pytest.raises(ValidationError) as refused:
        services.cluster_delete(acting_user=w.admin, cluster=other)
    assert "NFS shares" in refused.value.message_dict["cluster"][0]


LISTED = {
    "outsider": set(),
    "bob": set(),
    "dev1_viewer": set(),
    "dev1_admin": {"nas", "dev1-nas"},  # granted to department1, above dev1, and to dev1
    "dev2_admin": {"nas"},
    "dept_admin": {"nas", "dev1-nas"},  # and one granted to dev1, below department1
    "platform": {"nas", "dev1-nas", "lab-nas"},
}


@pytest.mark.parametrize("who", list(LISTED))
def test_tenant_admins_read_the_shares_usable_in_what_they_administer(k8s_world, who):
    w = k8s_world
    nfs_share(w.admin, w.cluster, name="dev1-nas", base_path="/dev1", granted_to=[w.dev1])
    lab = services.tenant_create(acting_user=w.admin, parent=None, name="lab")
    nfs_share(w.admin, w.cluster, name="lab-nas", base_path="/lab", granted_to=[lab])
    person = {"bob": w.bob, "platform": w.admin}.get(who) or getattr(w.people, who)
    body = TokenClient().as_user(person).get("/api/v1/nfs-shares/").json()
    assert {row["name"] for row in body["results"]} == LISTED[who]
    for row in body["results"]:
        if who != "platform":  # only grants to tenants they can see are named
            assert "lab" not in {grant["tenant_path"] for grant in row["grants"]}


def test_a_move_that_would_take_volumes_away_from_their_share_is_refused(k8s_world):
    w = k8s_world
    services.volume_create(
        acting_user=w.admin,
        spec=services.VolumeSpec(
            share=w.share, sub_path="dev1", name="dev1-public", capacity_bytes=GI, tenants=[w.dev1]
        ),
    )
    elsewhere = services.tenant_create(
        acting_user=w.admin, parent=None, name="department2", allocations=[spec(w.pool, gpu=0)]
    )
    services.allocation_set(acting_user=w.admin, tenant=w.dev1, spec=spec(w.pool, gpu=0))
    with pytest.raises(ValidationError) as refused:
        services.tenant_move(acting_user=w.admin, tenant=w.dev1, new_parent=elsewhere)
    assert refused.value.message_dict["parent"] == [
        "Volumes dev1-public (share nas) would leave the tenants their NFS share is granted to; first a "
        "platform admin grants the share to department2 or a tenant above it, or the volumes go."
    ]
    assert Tenant.objects.get(pk=w.dev1.pk).name_path == "department1/dev1"
    services.nfs_share_grant(acting_user=w.admin, share=w.share, tenant=elsewhere)
    assert (
        services.tenant_move(acting_user=w.admin, tenant=w.dev1, new_parent=elsewhere).name_path
        == "department2/dev1"
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_migration_gives_each_export_a_share_granted_where_it_is_mounted():
    """0007: one share per (cluster, server, export path), granted to the tenants mounting it, so the
    admins above them keep managing their volumes; PVs mount what they mounted before."""
    executor = MigrationExecutor(connection)
    before_shares = [("tenants", "0005_tenant_parent_path_idx")]
    executor.migrate(before_shares)
    old = executor.loader.project_state(before_shares).apps
    Cluster, Tenant_, Volume_, Attachment = (
        old.get_model("tenants", name) for name in ("Cluster", "Tenant", "Volume", "VolumeAttachment")
    )
    cluster = Cluster.objects.create(name="gpu", kind="kubernetes")
    Tenant_.objects.create(name="dept", name_path="dept", path="0009", depth=1, numchild=2)
    dev1 = Tenant_.objects.create(name="dev1", name_path="dept/dev1", path="00090001", depth=2)
    dev2 = Tenant_.objects.create(name="dev2", name_path="dept/dev2", path="00090002", depth=2)
    rows = [
        ("dev1-public", "nas", "/share/dev1/", [dev1]),
        ("dev1-again", "nas", "/share/dev1", [dev1]),
        ("public", "nas", "/share/public", [dev1, dev2]),
        ("other-server", "nas2", "/share/dev1", [dev2]),
    ]
    for name, server, path, tenants in rows:
        volume = Volume_.objects.create(
            cluster=cluster, name=name, server=server, export_path=path, capacity_bytes=GI, scope="shared"
        )
        for tenant in tenants:
            Attachment.objects.create(volume=volume, tenant=tenant, claim_name=name)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    shares = {
        share.name: (
            share.server,
            share.base_path,
            sorted(share.grants.values_list("tenant__name_path", flat=True)),
        )
        for share in NfsShare.objects.all()
    }
    assert shares == {
        "dev1-public": ("nas", "/share/dev1", ["dept/dev1"]),
        "public": ("nas", "/share/public", ["dept/dev1", "dept/dev2"]),
        "other-server": ("nas2", "/share/dev1", ["dept/dev2"]),
    }
    volumes = {
        v.name: (v.share.name, v.sub_path, v.server, v.export_path)
        for v in Volume.objects.select_related("share")
    }
    assert volumes == {
        "dev1-public": ("dev1-public", "", "nas", "/share/dev1"),
        "dev1-again": ("dev1-public", "", "nas", "/share/dev1"),
        "public": ("public", "", "nas", "/share/public"),
        "other-server": ("other-server", "", "nas2", "/share/dev1"),
    }
    assert AuditEvent.objects.filter(action="NFS_SHARE_CREATED", actor_name="system").count() == 3
    assert AuditEvent.objects.filter(action="NFS_SHARE_GRANTED", actor_name="system").count() == 4
    # The admin above dev1 still manages its volumes (the share reaches every tenant they serve).
    dept_admin = user("dept-admin")
    services.membership_grant(
        acting_user=user("platform", is_staff=True),
        tenant=Tenant.objects.get(name_path="dept"),
        user=dept_admin,
        role="admin",
    )
    volume = Volume.objects.get(name="public")
    updated = services.volume_update(
        acting_user=dept_admin,
        volume=volume,
        spec=services.VolumeSpec(
            share=volume.share,
            name="public",
            capacity_bytes=2 * GI,
            scope="shared",
            tenants=list(Tenant.objects.filter(name__in=["dev1", "dev2"])),
            claim_names={a.tenant_id: a.claim_name for a in volume.attachments.all()},
        ),
    )
    assert updated.capacity_bytes == 2 * GI

    # And back: the volumes get their server and export path again.
    executor = MigrationExecutor(connection)
    executor.migrate(before_shares)
    old = executor.loader.project_state(before_shares).apps
    back = dict(old.get_model("tenants", "Volume").objects.values_list("name", "export_path"))
    assert back == {
        "dev1-public": "/share/dev1",
        "dev1-again": "/share/dev1",
        "public": "/share/public",
        "other-server": "/share/dev1",
    }
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_volumes_filter_by_share_without_telling_which_shares_exist(k8s_world, lab):
    w = k8s_world
    mallory, _, _ = lab
    services.volume_create(
        acting_user=w.admin,
        spec=services.VolumeSpec(
            share=w.share, sub_path="dev1", name="dev1-public", capacity_bytes=GI, tenants=[w.dev1]
        ),
    )
    dept_admin = TokenClient().as_user(w.people.dept_admin)
    assert [v["name"] for v in dept_admin.get(f"/api/v1/volumes/?share={w.share.pk}").json()["results"]] == [
        "dev1-public"
    ]
    outsider = TokenClient().as_user(mallory)
    taken, missing = (outsider.get(f"/api/v1/volumes/?share={pk}") for pk in (w.share.pk, w.share.pk + 1000))
    assert taken.status_code == missing.status_code == 200
    assert taken.json() == missing.json() == {"count": 0, "next": None, "previous": None, "results": []}
