"""Every endpoint against every kind of caller: anonymous, no role, a role on another tenant, a role
here (viewer, member, admin), admin of an ancestor, platform admin. Refused calls change nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tenants import services
from tenants.models import (
    Allocation,
    AuditEvent,
    Cluster,
    Membership,
    NfsShare,
    NfsShareGrant,
    QuotaPlan,
    ResourcePool,
    StorageDirectory,
    Tenant,
    TenantService,
    Volume,
)
from tests.tenants.builders import K8sWorld, TokenClient

User = get_user_model()

PERSONAS = [
    "anonymous",
    "outsider",
    "dev2_admin",
    "dev1_viewer",
    "bob",
    "dev1_admin",
    "dept_admin",
    "platform",
]


def person(world: K8sWorld, name: str):
    return {
        "anonymous": None,
        "bob": world.bob,
        "platform": world.admin,
    }.get(name, getattr(world.people, name, None))


def client_for(world: K8sWorld, name: str) -> APIClient:
    user = person(world, name)
    return APIClient() if user is None else TokenClient().as_user(user)


def state_of_the_world() -> tuple:
    """Everything a refused call must leave as it was."""
    return (
        list(
            Tenant.objects.order_by("pk").values_list(
                "pk", "name_path", "display_name", "description", "state", "leaf"
            )
        ),
        list(
            Allocation.objects.order_by("pk").values_list(
                "pk", "tenant_id", "gpu", "cpu_millicores", "memory_bytes"
            )
        ),
        list(Membership.objects.order_by("pk").values_list("pk", "tenant_id", "user_id", "role")),
        list(Volume.objects.order_by("pk").values_list("pk", "name", "share_id", "sub_path")),
        list(NfsShare.objects.order_by("pk").values_list("pk", "name", "server", "base_path", "description")),
        list(NfsShareGrant.objects.order_by("pk").values_list("pk", "share_id", "tenant_id")),
        list(StorageDirectory.objects.order_by("pk").values_list("pk", "tenant_id", "path")),
        list(TenantService.objects.order_by("pk").values_list("pk", "tenant_id", "cluster_id", "name")),
        list(Cluster.objects.order_by("pk").values_list("pk", "name", "description")),
        list(ResourcePool.objects.order_by("pk").values_list("pk", "gpu_capacity")),
        list(QuotaPlan.objects.order_by("pk").values_list("pk", "name")),
        User.objects.count(),
        AuditEvent.objects.count(),
    )


@dataclass
class Call:
    method: str
    url: Callable[[K8sWorld], str]
    body: Callable[[K8sWorld], dict[str, Any]] | None
    expected: dict[str, int]  # persona -> status; anonymous is always 401/403

    def run(self, world: K8sWorld, who: str):
        client = client_for(world, who)
        kwargs = {"format": "json"}
        if self.body is not None:
            kwargs["data"] = self.body(world)
        return getattr(client, self.method)(self.url(world), **kwargs)


def expect(**overrides: int) -> dict[str, int]:
    return overrides


def platform_only(status: int) -> dict[str, int]:
    """Everyone but a platform admin is refused."""
    return {**dict.fromkeys(PERSONAS[1:-1], 403), "platform": status}


def dev1_allocation(w: K8sWorld) -> Allocation:
    return Allocation.objects.get(tenant=w.dev1)


CALLS: dict[str, Call] = {
    "read dev1": Call(
        "get",
        lambda w: f"/api/v1/tenants/{w.dev1.pk}/",
        None,
        expect(
            outsider=404,
            dev2_admin=404,
            dev1_viewer=200,
            bob=200,
            dev1_admin=200,
            dept_admin=200,
            platform=200,
        ),
    ),
    "describe dev1": Call(
        "patch",
        lambda w: f"/api/v1/tenants/{w.dev1.pk}/",
        lambda w: {"description": "changed"},
        expect(
            outsider=404,
            dev2_admin=404,
            dev1_viewer=403,
            bob=403,
            dev1_admin=200,
            dept_admin=200,
            platform=200,
        ),
    ),
    "create a sub-tenant under dev1": Call(
        "post",
        lambda w: "/api/v1/tenants/",
        lambda w: {"parent": w.dev1.pk, "name": "team"},
        # The parent is a foreign key in the body: one the caller cannot see is "does not exist".
        expect(
            outsider=400,
            dev2_admin=400,
            dev1_viewer=403,
            bob=403,
            dev1_admin=201,
            dept_admin=201,
            platform=201,
        ),
    ),
    "create a level-1 tenant": Call(
        "post",
        lambda w: "/api/v1/tenants/",
        lambda w: {"name": "department2"},
        platform_only(201),
    ),
    "change dev1's allocation": Call(
        "patch",
        lambda w: f"/api/v1/allocations/{dev1_allocation(w).pk}/",
        lambda w: {"gpu": 0},
        # A tenant's own admins do not set its allocation: that comes from above.
        expect(
            outsider=404,
            dev2_admin=404,
            dev1_viewer=403,
            bob=403,
            dev1_admin=403,
            dept_admin=200,
            platform=200,
        ),
    ),
    "suspend dev1": Call(
        "post",
        lambda w: f"/api/v1/tenants/{w.dev1.pk}/suspend/",
        None,
        expect(
            outsider=404,
            dev2_admin=404,
            dev1_viewer=403,
            bob=403,
            dev1_admin=403,
            dept_admin=200,
            platform=200,
        ),
    ),
    "read what deleting dev1 takes": Call(
        "get",
        lambda w: f"/api/v1/tenants/{w.dev1.pk}/deletion-impact/",
        None,
        # It names the whole subtree and counts its members: for those who may delete dev1.
        expect(
            outsider=404,
            dev2_admin=404,
            dev1_viewer=403,
            bob=403,
            dev1_admin=403,
            dept_admin=200,
            platform=200,
        ),
    ),
    "delete dev1": Call(
        "delete",
        lambda w: f"/api/v1/tenants/{w.dev1.pk}/?confirm=true",
        None,
        expect(
            outsider=404,
            dev2_admin=404,
            dev1_viewer=403,
            bob=403,
            dev1_admin=403,
            dept_admin=204,
            platform=204,
        ),
    ),
    "add a member to dev1": Call(
        "post",
        lambda w: "/api/v1/memberships/",
        lambda w: {"tenant": w.dev1.pk, "user": w.people.outsider.username, "role": "member"},
        expect(
            outsider=400,
            dev2_admin=400,
            dev1_viewer=403,
            bob=403,
            dev1_admin=201,
            dept_admin=201,
            platform=201,
        ),
    ),
    "remove Bob from dev1": Call(
        "delete",
        lambda w: f"/api/v1/memberships/{Membership.objects.get(tenant=w.dev1, user=w.bob).pk}/",
        None,
        expect(
            outsider=404,
            dev2_admin=404,
            dev1_viewer=403,
            bob=403,
            dev1_admin=204,
            dept_admin=204,
            platform=204,
        ),
    ),
    "give dev1 a volume": Call(
        "post",
        lambda w: "/api/v1/volumes/",
        lambda w: {
            "share": w.share.pk,
            "sub_path": "dev1",
            "name": "dev1-public",
            "capacity": "10Gi",
            "scope": "private",
            "attachments": [{"tenant": w.dev1.pk}],
        },
        # The share is a foreign key in the body too: only tenant admins of a subtree it is granted to
        # (or above) see it, so for others it does not exist.
        expect(
            outsider=400,
            dev2_admin=400,
            dev1_viewer=400,
            bob=400,
            dev1_admin=403,
            dept_admin=201,
            platform=201,
        ),
    ),
    "read the NFS share": Call(
        "get",
        lambda w: f"/api/v1/nfs-shares/{w.share.pk}/",
        None,
        # Granted to department1: read by the admins of department1 and of any tenant below it.
        expect(
            outsider=404,
            dev2_admin=200,
            dev1_viewer=404,
            bob=404,
            dev1_admin=200,
            dept_admin=200,
            platform=200,
        ),
    ),
    "register an NFS share": Call(
        "post",
        lambda w: "/api/v1/nfs-shares/",
        lambda w: {"cluster": w.cluster.pk, "name": "lab-nas", "server": "10.0.0.5", "base_path": "/lab"},
        platform_only(201),
    ),
    "change the NFS share": Call(
        "patch",
        lambda w: f"/api/v1/nfs-shares/{w.share.pk}/",
        lambda w: {"server": "nas2.example.com"},
        expect(
            outsider=404,
            dev2_admin=403,
            dev1_viewer=404,
            bob=404,
            dev1_admin=403,
            dept_admin=403,
            platform=200,
        ),
    ),
    "delete the NFS share": Call(
        "delete",
        lambda w: f"/api/v1/nfs-shares/{w.share.pk}/",
        None,
        expect(
            outsider=404,
            dev2_admin=403,
            dev1_viewer=404,
            bob=404,
            dev1_admin=403,
            dept_admin=403,
            platform=204,
        ),
    ),
    "grant the NFS share to dev1": Call(
        "post",
        lambda w: f"/api/v1/nfs-shares/{w.share.pk}/grants/",
        lambda w: {"tenant": w.dev1.pk},
        expect(
            outsider=404,
            dev2_admin=400,  # dev1 does not exist for them
            dev1_viewer=404,
            bob=404,
            dev1_admin=403,
            dept_admin=403,
            platform=201,
        ),
    ),
    "take the NFS share back from department1": Call(
        "delete",
        lambda w: f"/api/v1/nfs-shares/{w.share.pk}/grants/{w.department1.pk}/",
        None,
        expect(
            outsider=404,
            dev2_admin=404,  # a grant to a tenant they cannot see does not exist for them
            dev1_viewer=404,
            bob=404,
            dev1_admin=404,
            dept_admin=403,
            platform=204,
        ),
    ),
    "change a pool's capacity": Call(
        "patch",
        lambda w: f"/api/v1/pools/{w.pool.pk}/",
        lambda w: {"gpu_capacity": 4},
        platform_only(200),
    ),
    "create a cluster": Call(
        "post",
        lambda w: "/api/v1/clusters/",
        lambda w: {"name": "other", "kind": "yarn"},
        platform_only(201),
    ),
    "create a plan": Call(
        "post",
        lambda w: "/api/v1/plans/",
        lambda w: {"name": "gpu-small", "allocations": [{"pool": w.pool.pk, "gpu": 1}]},
        platform_only(201),
    ),
    "create a user": Call(
        "post",
        lambda w: "/api/v1/users/",
        lambda w: {"username": "newcomer", "password": "a-Long-enough-passw0rd"},
        platform_only(201),
    ),
}


@pytest.mark.parametrize("who", PERSONAS)
@pytest.mark.parametrize("call_name", list(CALLS))
def test_permission_matrix(k8s_world, call_name, who):
    call = CALLS[call_name]
    before = state_of_the_world()
    response = call.run(k8s_world, who)
    if who == "anonymous":
        assert response.status_code in (401, 403), response.content
    else:
        assert response.status_code == call.expected[who], response.content
    if response.status_code >= 400:
        assert state_of_the_world() == before, "a refused call changed something"
        if response.status_code == 404:
            # A tenant the caller cannot see is not named back to them.
            assert b"dev1" not in response.content
    elif call.method != "get":
        assert AuditEvent.objects.count() > before[-1], "an allowed write left no audit row"


LISTS = {
    "outsider": set(),
    "dev2_admin": {"department1/dev2"},
    "dev1_viewer": {"department1/dev1"},
    "bob": {"department1/dev1"},
    "dev1_admin": {"department1/dev1"},
    "dept_admin": {"department1", "department1/dev1", "department1/dev2"},
    "platform": {"default", "department1", "department1/dev1", "department1/dev2"},
}


@pytest.mark.parametrize("who", list(LISTS))
def test_each_user_lists_exactly_their_tenants(k8s_world, who):
    response = client_for(k8s_world, who).get("/api/v1/tenants/")
    assert response.status_code == 200
    assert {row["path"] for row in response.json()["results"]} == LISTS[who]


def test_tom_cannot_see_dev1_anywhere(k8s_world):
    w = k8s_world
    tom = TokenClient().as_user(w.tom)
    assert tom.get(f"/api/v1/tenants/{w.dev1.pk}/").status_code == 404
    assert tom.get(f"/api/v1/allocations/{Allocation.objects.get(tenant=w.dev1).pk}/").status_code == 404
    for endpoint in ("tenants", "allocations", "memberships", "volumes", "storage", "audit"):
        body = tom.get(f"/api/v1/{endpoint}/").content.decode()
        assert "dev1" not in body, endpoint
    assert tom.get("/api/v1/tenants/?path=department1/dev1").json()["count"] == 0


def test_a_viewer_does_not_learn_the_subtree_from_the_deletion_impact(k8s_world):
    """Found by the permission property test: a viewer of department1 read the names of dev1 and dev2
    (which they cannot see) and the member count through GET deletion-impact."""
    w = k8s_world
    viewer = w.people.outsider
    services.membership_grant(acting_user=w.admin, tenant=w.department1, user=viewer, role="viewer")
    response = TokenClient().as_user(viewer).get(f"/api/v1/tenants/{w.department1.pk}/deletion-impact/")
    assert response.status_code == 403
    assert b"dev1" not in response.content and b"dev2" not in response.content


def test_a_shared_volume_is_audited_where_every_tenant_it_names_is_administered(k8s_world):
    """Found by the permission property test: a shared volume's audit row, scoped to its first
    tenant, named every tenant it is attached to; dev1's admin read dev2's name in dev1's history."""
    w = k8s_world
    response = client_for(w, "platform").post(
        "/api/v1/volumes/",
        {
            "share": w.share.pk,
            "sub_path": "public",
            "name": "public",
            "capacity": "10Gi",
            "scope": "shared",
            "attachments": [{"tenant": w.dev1.pk}, {"tenant": w.dev2.pk}],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert AuditEvent.objects.get(action="VOLUME_CREATED").tenant == w.department1
    assert b"department1/dev2" not in client_for(w, "dev1_admin").get("/api/v1/audit/").content
    assert b"department1/dev2" in client_for(w, "dept_admin").get("/api/v1/audit/").content


def test_a_dev1_admin_cannot_create_under_dev2(k8s_world):
    w = k8s_world
    before = state_of_the_world()
    response = (
        TokenClient()
        .as_user(w.people.dev1_admin)
        .post("/api/v1/tenants/", {"parent": w.dev2.pk, "name": "sneaky"}, format="json")
    )
    assert response.status_code == 400 and "parent" in response.json()
    assert state_of_the_world() == before


def test_audit_is_read_by_admins_over_their_subtree_and_by_others_on_their_own_tenants(k8s_world):
    w = k8s_world

    def actions(who: str) -> set[str]:
        return {
            row["tenant_path"]
            for row in client_for(w, who).get("/api/v1/audit/?page_size=500").json()["results"]
        }

    assert actions("outsider") == set()
    assert actions("bob") == actions("dev1_viewer") == {"department1/dev1"}
    assert actions("dev1_admin") == {"department1/dev1"}
    assert actions("dept_admin") == {"department1", "department1/dev1", "department1/dev2"}
    assert "" in actions("platform")  # cluster and pool events belong to no tenant


def test_users_see_themselves_and_the_people_they_share_a_tenant_with(k8s_world):
    w = k8s_world
    names = {row["username"] for row in TokenClient().as_user(w.bob).get("/api/v1/users/").json()["results"]}
    assert names == {"bob", "dev1-admin", "dev1-viewer"}
    assert {
        row["username"]
        for row in TokenClient().as_user(w.people.outsider).get("/api/v1/users/").json()["results"]
    } == {"outsider"}
    tom_row = (
        TokenClient().as_user(w.people.dept_admin).get("/api/v1/users/?username=tom").json()["results"][0]
    )
    assert tom_row["memberships"] == [
        {"tenant": w.dev2.pk, "tenant_path": "department1/dev2", "role": "member"}
    ]


# Tenant services (Hive databases) live on a Hadoop cluster: the Arena world gets one, with dev1
# using the database `dev1_data`.
@pytest.fixture
def hive_world(k8s_world):
    hadoop = services.cluster_create(acting_user=k8s_world.admin, name="bigdata", kind=Cluster.Kind.YARN)
    database = services.tenant_service_create(
        acting_user=k8s_world.admin,
        tenant=k8s_world.dev1,
        cluster=hadoop,
        kind="hive_database",
        name="dev1_data",
    )
    return k8s_world, hadoop, database


# (method, url, body, persona -> status): dev1's database is read by whoever sees dev1 and linked or
# unlinked by those who manage dev1 (its admins above it); the tenant in a body is a foreign key,
# so one the caller cannot see does not exist (400).
SERVICE_CALLS: dict[str, tuple[str, Callable, Callable | None, dict[str, int]]] = {
    "link a Hive database to dev1": (
        "post",
        lambda database: "/api/v1/tenant-services/",
        lambda database: {"tenant": database.tenant_id, "cluster": database.cluster_id, "name": "dev1_more"},
        expect(
            outsider=400,
            dev2_admin=400,
            dev1_viewer=403,
            bob=403,
            dev1_admin=403,
            dept_admin=201,
            platform=201,
        ),
    ),
    "read dev1's Hive database": (
        "get",
        lambda database: f"/api/v1/tenant-services/{database.pk}/",
        None,
        expect(
            outsider=404,
            dev2_admin=404,
            dev1_viewer=200,
            bob=200,
            dev1_admin=200,
            dept_admin=200,
            platform=200,
        ),
    ),
    "unlink dev1's Hive database": (
        "delete",
        lambda database: f"/api/v1/tenant-services/{database.pk}/",
        None,
        expect(
            outsider=404,
            dev2_admin=404,
            dev1_viewer=403,
            bob=403,
            dev1_admin=403,
            dept_admin=204,
            platform=204,
        ),
    ),
}


@pytest.mark.parametrize("who", PERSONAS)
@pytest.mark.parametrize("call_name", list(SERVICE_CALLS))
def test_tenant_service_permission_matrix(hive_world, call_name, who):
    world, _, database = hive_world
    method, url, body, expected = SERVICE_CALLS[call_name]
    before = state_of_the_world()
    kwargs: dict[str, Any] = {"format": "json"}
    if body is not None:
        kwargs["data"] = body(database)
    response = getattr(client_for(world, who), method)(url(database), **kwargs)
    if who == "anonymous":
        assert response.status_code in (401, 403), response.content
    else:
        assert response.status_code == expected[who], response.content
    if response.status_code >= 400:
        assert state_of_the_world() == before, "a refused call changed something"
        if response.status_code in (400, 404):
            assert b"dev1" not in response.content
    elif method != "get":
        assert AuditEvent.objects.count() > before[-1], "an allowed write left no audit row"
    if who != "anonymous":
        # The list shows dev1's database exactly to those who see dev1 (while it is there).
        listed = {
            row["name"] for row in client_for(world, who).get("/api/v1/tenant-services/").json()["results"]
        }
        still_there = TenantService.objects.filter(pk=database.pk).exists()
        assert ("dev1_data" in listed) == (still_there and who not in ("outsider", "dev2_admin"))
