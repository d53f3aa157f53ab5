"""The two source documents' scenarios, built and checked only through the HTTP API.

A platform admin signs in with a real DRF token and creates everything: clusters, pool capacities
written as Kubernetes quantities, the tenant tree with its allocations, users, memberships, NAS
volumes and HDFS directories. The people of the documents (Bob and Tom; users A, B and C) then get
their own token from /api/v1/auth/token/ and see only what the documents say they see.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from tenants.models import Allocation, AuditEvent, Tenant

PASSWORD = "Canopy-test-pass-42"


# ---------------------------------------------------------------------------------------------
# HTTP helpers


def send(client: APIClient, method: str, url: str, body=None, status: int = 200):
    """One JSON request; fails with the response body if the status is not the expected one."""
    response = getattr(client, method)(url, body, format="json")
    assert response.status_code == status, (method, url, body, response.status_code, response.content)
    return response.json() if response.content else None


def get(client: APIClient, url: str, status: int = 200, **params):
    response = client.get(url, params)
    assert response.status_code == status, (url, params, response.status_code, response.content)
    return response.json()


def sign_in(username: str, password: str = PASSWORD) -> APIClient:
    """A fresh client holding the token the API hands out for this username and password."""
    client = APIClient()
    token = send(client, "post", "/api/v1/auth/token/", {"username": username, "password": password})["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def create_user(admin: APIClient, username: str) -> dict:
    return send(admin, "post", "/api/v1/users/", {"username": username, "password": PASSWORD}, 201)


def create_tenant(admin: APIClient, name: str, parent: int | None = None, **body) -> dict:
    return send(admin, "post", "/api/v1/tenants/", {"name": name, "parent": parent, **body}, 201)


def default_pool(admin: APIClient, cluster_id: int) -> dict:
    page = get(admin, "/api/v1/pools/", cluster=cluster_id, name="default")
    assert page["count"] == 1
    return page["results"][0]


def only_allocation(tenant: dict) -> dict:
    assert len(tenant["allocations"]) == 1, tenant["allocations"]
    return tenant["allocations"][0]


def names(page: dict, key: str = "name") -> list:
    return [row[key] for row in page["results"]]


def write_counts() -> tuple[int, int, int]:
    return Tenant.objects.count(), Allocation.objects.count(), AuditEvent.objects.count()


# ---------------------------------------------------------------------------------------------
# The Arena document, through the API


@dataclass
class Arena:
    admin: APIClient
    cluster: int
    pool: int
    department1: int
    dev1: int
    dev2: int
    dev1_allocation: int
    volumes: dict[str, int]


DEV1_UNLIMITED_FORMS = {
    "null": {"cpu": None, "memory": None},
    "the-word": {"cpu": "unlimited", "memory": "Unlimited"},
    "omitted": {},
}


def build_arena(api, platform_admin, dev1_cpu_and_memory: dict | None = None) -> Arena:
    """3 GPUs, 12 CPUs, 90Gi (three workers of 1 GPU, 4 cores, 30 GiB); department1 > dev1, dev2;
    Bob in dev1 with 1 GPU and unlimited CPU and memory; Tom in dev2 with 2 GPUs, 8 CPUs, 60 GiB;
    dev1-public, dev2-public and the shared department1-public."""
    admin = api.as_user(platform_admin)
    cluster = send(admin, "post", "/api/v1/clusters/", {"name": "gpu-cluster", "kind": "kubernetes"}, 201)
    pool = default_pool(admin, cluster["id"])
    pool = send(
        admin,
        "patch",
        f"/api/v1/pools/{pool['id']}/",
        {"gpu_capacity": "3", "cpu_capacity": "12", "memory_capacity": "90Gi"},
    )
    assert (pool["gpu_capacity"], pool["cpu_capacity"], pool["memory_capacity"]) == (3, "12", "90Gi")

    department1 = create_tenant(admin, "department1", allocations=[{"pool": pool["id"], "gpu": 3}])
    unlimited = DEV1_UNLIMITED_FORMS["null"] if dev1_cpu_and_memory is None else dev1_cpu_and_memory
    dev1 = create_tenant(
        admin, "dev1", department1["id"], allocations=[{"pool": pool["id"], "gpu": 1, **unlimited}]
    )
    dev2 = create_tenant(
        admin,
        "dev2",
        department1["id"],
        allocations=[{"pool": pool["id"], "gpu": 2, "cpu": "8", "memory": "60Gi"}],
    )

    for username, tenant in (("bob", dev1), ("tom", dev2)):
        create_user(admin, username)
        send(
            admin,
            "post",
            "/api/v1/memberships/",
            {"tenant": tenant["id"], "user": username, "role": "member"},
            201,
        )

    # The NAS is the platform's: a share, granted to department1, whose directories are the volumes.
    share = send(
        admin,
        "post",
        "/api/v1/nfs-shares/",
        {
            "cluster": cluster["id"],
            "name": "department1-nas",
            "server": "nas.cluster.local",
            "base_path": "/share",
        },
        201,
    )
    send(admin, "post", f"/api/v1/nfs-shares/{share['id']}/grants/", {"tenant": department1["id"]}, 201)

    def volume(name: str, sub_path: str, scope: str, tenants: list[dict]) -> int:
        body = {
            "share": share["id"],
            "sub_path": sub_path,
            "name": name,
            "capacity": "100Gi",
            "scope": scope,
            "attachments": [{"tenant": t["id"]} for t in tenants],
        }
        return send(admin, "post", "/api/v1/volumes/", body, 201)["id"]

    volumes = {
        "dev1-public": volume("dev1-public", "dev1", "private", [dev1]),
        "dev2-public": volume("dev2-public", "dev2", "private", [dev2]),
        "department1-public": volume("department1-public", "department1", "shared", [dev1, dev2]),
    }
    return Arena(
        admin=admin,
        cluster=cluster["id"],
        pool=pool["id"],
        department1=department1["id"],
        dev1=dev1["id"],
        dev2=dev2["id"],
        dev1_allocation=only_allocation(dev1)["id"],
        volumes=volumes,
    )


@pytest.mark.parametrize("unlimited_form", list(DEV1_UNLIMITED_FORMS))
def test_arena_tenants_and_allocations_read_back_as_the_document_table(api, platform_admin, unlimited_form):
    arena = build_arena(api, platform_admin, DEV1_UNLIMITED_FORMS[unlimited_form])
    admin = arena.admin

    dev1 = get(admin, f"/api/v1/tenants/{arena.dev1}/")
    assert (dev1["path"], dev1["level"], dev1["parent"]) == ("department1/dev1", 2, arena.department1)
    dev1_pool = only_allocation(dev1)
    assert (dev1_pool["pool"], dev1_pool["cluster"], dev1_pool["kind"]) == (
        arena.pool,
        "gpu-cluster",
        "kubernetes",
    )
    assert (dev1_pool["gpu"], dev1_pool["cpu"], dev1_pool["memory"]) == (1, None, None)

    dev2 = get(admin, f"/api/v1/tenants/{arena.dev2}/")
    assert dev2["path"] == "department1/dev2"
    dev2_pool = only_allocation(dev2)
    assert (dev2_pool["gpu"], dev2_pool["cpu"], dev2_pool["memory"]) == (2, "8", "60Gi")
    assert dev2_pool["remaining"] == {"gpu": 2, "cpu": "8", "memory": "60Gi", "capacity": None}

    department1 = get(admin, f"/api/v1/tenants/{arena.department1}/")
    assert (department1["path"], department1["level"], department1["parent"]) == ("department1", 1, None)
    summary = only_allocation(department1)
    assert (summary["gpu"], summary["cpu"], summary["memory"]) == (3, None, None)
    # Sub-tenants hold every GPU; dev2's CPU and memory are counted, dev1's are unlimited.
    assert summary["children"] == {"gpu": 3, "cpu": "8", "memory": "60Gi", "capacity": None}
    assert summary["children_unlimited"] == {"gpu": 0, "cpu": 1, "memory": 1}
    assert summary["remaining"] == {"gpu": 0, "cpu": None, "memory": None, "capacity": None}

    children = get(admin, "/api/v1/tenants/", parent=arena.department1)
    assert names(children, "path") == ["department1/dev1", "department1/dev2"]

    pool = get(admin, f"/api/v1/pools/{arena.pool}/")
    assert pool["allocated"]["gpu"] == 3 and pool["free"]["gpu"] == 0
    # Unlimited is no reservation: all 12 CPUs and 90Gi stay free for Bob to use.
    assert (pool["free"]["cpu"], pool["free"]["memory"]) == ("12", "90Gi")


def test_arena_bob_lists_the_volumes_of_dev1_like_arena_data_list(api, platform_admin):
    arena = build_arena(api, platform_admin)
    bob = sign_in("bob")

    page = get(bob, "/api/v1/volumes/", tenant=arena.dev1)
    assert names(page) == ["department1-public", "dev1-public"]
    dev1_claims = {
        row["name"]: [a["claim_name"] for a in row["attachments"] if a["tenant"] == arena.dev1]
        for row in page["results"]
    }
    assert dev1_claims == {"department1-public": ["department1-public-dev1"], "dev1-public": ["dev1-public"]}

    # Both claims of the shared volume mount one NAS directory; the private ones do not.
    shared = get(arena.admin, f"/api/v1/volumes/{arena.volumes['department1-public']}/")
    assert shared["scope"] == "shared" and shared["export_path"] == "/share/department1"
    assert (shared["server"], shared["share_name"], shared["sub_path"]) == (
        "nas.cluster.local",
        "department1-nas",
        "department1",
    )
    assert {a["tenant"]: a["claim_name"] for a in shared["attachments"]} == {
        arena.dev1: "department1-public-dev1",
        arena.dev2: "department1-public-dev2",
    }
    private_paths = {
        get(arena.admin, f"/api/v1/volumes/{arena.volumes[name]}/")["export_path"]
        for name in ("dev1-public", "dev2-public")
    }
    assert private_paths == {"/share/dev1", "/share/dev2"}

    # Without a filter Bob sees the same two volumes: dev2-public does not exist for him.
    assert names(get(bob, "/api/v1/volumes/")) == ["department1-public", "dev1-public"]
    get(bob, f"/api/v1/volumes/{arena.volumes['dev2-public']}/", status=404)


def test_arena_bob_does_not_learn_of_dev2_through_the_shared_volume(api, platform_admin):
    arena = build_arena(api, platform_admin)
    bob = sign_in("bob")
    get(bob, f"/api/v1/tenants/{arena.dev2}/", status=404)
    shared = get(bob, f"/api/v1/volumes/{arena.volumes['department1-public']}/")
    assert [a["tenant_path"] for a in shared["attachments"]] == ["department1/dev1"]


def test_arena_tom_cannot_see_dev1(api, platform_admin):
    arena = build_arena(api, platform_admin)
    tom = sign_in("tom")

    missing = get(tom, f"/api/v1/tenants/{arena.dev1}/", status=404)
    nowhere = get(tom, "/api/v1/tenants/999999999/", status=404)
    assert missing == nowhere  # the same answer as for a tenant that does not exist
    tenants = get(tom, "/api/v1/tenants/")
    assert names(tenants, "path") == ["department1/dev2"]
    assert only_allocation(tenants["results"][0])["gpu"] == 2
    assert names(get(tom, "/api/v1/volumes/")) == ["department1-public", "dev2-public"]
    get(tom, f"/api/v1/volumes/{arena.volumes['dev1-public']}/", status=404)
    get(tom, f"/api/v1/allocations/{arena.dev1_allocation}/", status=404)
    assert get(tom, "/api/v1/allocations/", tenant=arena.dev1)["count"] == 0


def test_arena_bob_cannot_raise_his_own_group_quota(api, platform_admin):
    arena = build_arena(api, platform_admin)
    bob = sign_in("bob")
    events = AuditEvent.objects.count()

    refused = send(bob, "patch", f"/api/v1/allocations/{arena.dev1_allocation}/", {"gpu": 2}, 403)
    assert refused == {"detail": "You may not manage department1/dev1."}
    assert get(bob, f"/api/v1/allocations/{arena.dev1_allocation}/")["gpu"] == 1
    assert AuditEvent.objects.count() == events


# ---------------------------------------------------------------------------------------------
# Quantities over HTTP


@pytest.mark.parametrize(
    ("field", "sent", "returned"),
    [
        ("cpu", "500m", "500m"),
        ("cpu", 0.5, "500m"),
        ("cpu", "1.5", "1500m"),
        ("cpu", "8", "8"),
        ("cpu", 2, "2"),
        ("memory", "60Gi", "60Gi"),
        ("memory", 64424509440, "60Gi"),
        ("memory", "512Mi", "512Mi"),
        ("gpu", "1", 1),
    ],
)
def test_quantities_are_accepted_in_any_form_and_returned_canonically(
    api, platform_admin, field, sent, returned
):
    arena = build_arena(api, platform_admin)
    url = f"/api/v1/allocations/{arena.dev1_allocation}/"
    assert send(arena.admin, "patch", url, {field: sent})[field] == returned
    assert get(arena.admin, url)[field] == returned
    assert only_allocation(get(arena.admin, f"/api/v1/tenants/{arena.dev1}/"))[field] == returned


BAD_QUANTITIES = [
    ("memory", "60GB", "'60GB' is not a Kubernetes quantity"),
    ("cpu", "8 cores", "'8 cores' is not a Kubernetes quantity"),
    ("cpu", "abc", "'abc' is not a Kubernetes quantity"),
    ("cpu", "0.0005", "whole millicores"),
    ("memory", "0.5", "whole bytes"),
    ("gpu", "1.5", "GPUs are counted in whole units"),
    ("memory", "-1Gi", "cannot be negative"),
    ("cpu", True, "not a boolean"),
]


@pytest.mark.parametrize(("field", "sent", "message"), BAD_QUANTITIES)
def test_a_wrong_quantity_on_an_allocation_is_a_400_naming_the_field(
    api, platform_admin, field, sent, message
):
    arena = build_arena(api, platform_admin)
    url = f"/api/v1/allocations/{arena.dev1_allocation}/"
    before = get(arena.admin, url)
    counts = write_counts()

    body = send(arena.admin, "patch", url, {field: sent}, 400)
    assert list(body) == [field] and message in body[field][0]
    assert get(arena.admin, url) == before
    assert write_counts() == counts


@pytest.mark.parametrize(("field", "sent", "message"), BAD_QUANTITIES)
def test_a_wrong_quantity_in_a_new_tenant_is_a_400_under_allocations(
    api, platform_admin, field, sent, message
):
    arena = build_arena(api, platform_admin)
    counts = write_counts()
    allocation = {"pool": arena.pool, "gpu": 0, field: sent}
    body = send(
        arena.admin,
        "post",
        "/api/v1/tenants/",
        {"parent": arena.department1, "name": "dev3", "allocations": [allocation]},
        400,
    )
    assert list(body) == ["allocations"] and list(body["allocations"]) == ["0"]
    assert list(body["allocations"]["0"]) == [field] and message in body["allocations"]["0"][field][0]
    assert write_counts() == counts
    assert get(arena.admin, "/api/v1/tenants/", path="department1/dev3")["count"] == 0


def test_pool_capacities_refuse_unlimited_and_wrong_units(api, platform_admin):
    arena = build_arena(api, platform_admin)
    url = f"/api/v1/pools/{arena.pool}/"
    counts = write_counts()
    assert (
        "may not be null" in send(arena.admin, "patch", url, {"gpu_capacity": None}, 400)["gpu_capacity"][0]
    )
    assert (
        "'unlimited' is not a Kubernetes quantity"
        in (send(arena.admin, "patch", url, {"cpu_capacity": "unlimited"}, 400)["cpu_capacity"][0])
    )
    assert "'90GB'" in send(arena.admin, "patch", url, {"memory_capacity": "90GB"}, 400)["memory_capacity"][0]
    pool = get(arena.admin, url)
    assert (pool["gpu_capacity"], pool["cpu_capacity"], pool["memory_capacity"]) == (3, "12", "90Gi")
    assert write_counts() == counts


@pytest.mark.parametrize("sent", ["NaN", "Infinity"])
def test_not_a_number_is_a_400_not_a_server_error(api, platform_admin, sent):
    arena = build_arena(api, platform_admin)
    arena.admin.raise_request_exception = False
    response = arena.admin.patch(
        f"/api/v1/allocations/{arena.dev1_allocation}/", {"cpu": sent}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()) == ["cpu"]


@pytest.mark.parametrize(("field", "sent"), [("cpu", "1e30"), ("memory", "1e30"), ("gpu", "3Gi")])
def test_an_out_of_range_quantity_is_a_400_not_a_server_error(api, platform_admin, field, sent):
    arena = build_arena(api, platform_admin)
    admin = arena.admin
    admin.raise_request_exception = False
    lab = create_tenant(admin, "lab", allocations=[{"pool": arena.pool}])  # unlimited in everything
    counts = write_counts()
    response = admin.post(
        "/api/v1/tenants/",
        {"parent": lab["id"], "name": "big", "allocations": [{"pool": arena.pool, field: sent}]},
        format="json",
    )
    assert write_counts() == counts
    assert response.status_code == 400


def test_an_out_of_range_pool_capacity_names_the_api_field(api, platform_admin):
    arena = build_arena(api, platform_admin)
    body = send(arena.admin, "patch", f"/api/v1/pools/{arena.pool}/", {"cpu_capacity": "1e30"}, 400)
    assert list(body) == ["cpu_capacity"]


def test_a_pool_write_answers_with_the_same_figures_as_a_read(api, platform_admin):
    arena = build_arena(api, platform_admin)
    written = send(arena.admin, "patch", f"/api/v1/pools/{arena.pool}/", {"description": "3 workers"})
    read = get(arena.admin, f"/api/v1/pools/{arena.pool}/")
    assert written["free"] == read["free"] and written["allocated"] == read["allocated"]


# ---------------------------------------------------------------------------------------------
# A child asking for more than its parent has


def test_a_child_above_its_parent_is_a_400_naming_the_parent_and_what_is_left(api, platform_admin):
    arena = build_arena(api, platform_admin)
    admin = arena.admin
    url = f"/api/v1/allocations/{arena.dev1_allocation}/"
    counts = write_counts()

    body = send(admin, "patch", url, {"gpu": 2}, 400)
    assert body == {
        "gpu": [
            "department1 has 3 GPUs in pool gpu-cluster/default; its sub-tenants hold 3 GPUs, "
            "so 0 GPUs is left and department1/dev1 may have at most 1 GPU."
        ]
    }
    assert get(admin, url)["gpu"] == 1

    body = send(
        admin,
        "post",
        "/api/v1/tenants/",
        {"parent": arena.department1, "name": "dev3", "allocations": [{"pool": arena.pool, "gpu": 1}]},
        400,
    )
    assert body == {
        "gpu": [
            "department1 has 3 GPUs in pool gpu-cluster/default; its sub-tenants hold 3 GPUs, "
            "so 0 GPUs is left."
        ]
    }
    assert write_counts() == counts
    assert names(get(admin, "/api/v1/tenants/", parent=arena.department1)) == ["dev1", "dev2"]
    department1 = only_allocation(get(admin, f"/api/v1/tenants/{arena.department1}/"))
    assert department1["children"]["gpu"] == 3 and department1["remaining"]["gpu"] == 0


def test_a_child_cannot_be_unlimited_where_its_parent_is_limited(api, platform_admin):
    arena = build_arena(api, platform_admin)
    counts = write_counts()
    body = send(
        arena.admin,
        "post",
        "/api/v1/tenants/",
        {"parent": arena.department1, "name": "dev3", "allocations": [{"pool": arena.pool}]},
        400,
    )
    assert body == {
        "gpu": [
            "department1 is limited to 3 GPUs in pool gpu-cluster/default, so its sub-tenants cannot be unlimited."
        ]
    }
    assert write_counts() == counts


# ---------------------------------------------------------------------------------------------
# The MRS document, through the API


@dataclass
class Mrs:
    admin: APIClient
    cluster: int
    pool: int
    highmem: int
    t1: int
    t2: int
    t3: int


def build_mrs(api, platform_admin) -> Mrs:
    """A YARN cluster with a default pool and a HighMEM pool; t1, t2, t3 with queue capacities in the
    default pool; A administers t1 and t2, B t3, C t1."""
    admin = api.as_user(platform_admin)
    cluster = send(admin, "post", "/api/v1/clusters/", {"name": "bigdata", "kind": "yarn"}, 201)
    pool = default_pool(admin, cluster["id"])
    send(admin, "patch", f"/api/v1/pools/{pool['id']}/", {"cpu_capacity": "64", "memory_capacity": "256Gi"})
    highmem = send(
        admin,
        "post",
        "/api/v1/pools/",
        {
            "cluster": cluster["id"],
            "name": "highmem",
            "node_selector": "HighMEM",
            "cpu_capacity": "32",
            "memory_capacity": "512Gi",
        },
        201,
    )
    t1 = create_tenant(admin, "t1", allocations=[{"pool": pool["id"], "capacity": "40", "max_capacity": 80}])
    t2 = create_tenant(admin, "t2", allocations=[{"pool": pool["id"], "capacity": 30}])
    t3 = create_tenant(
        admin,
        "t3",
        allocations=[{"pool": pool["id"], "capacity": 20}, {"pool": highmem["id"], "capacity": 100}],
    )
    for username in ("usera", "userb", "userc"):
        create_user(admin, username)
    for tenant, username in ((t1, "usera"), (t2, "usera"), (t3, "userb"), (t1, "userc")):
        send(
            admin,
            "post",
            "/api/v1/memberships/",
            {"tenant": tenant["id"], "user": username, "role": "admin"},
            201,
        )
    return Mrs(admin, cluster["id"], pool["id"], highmem["id"], t1["id"], t2["id"], t3["id"])


def test_mrs_pools_and_level1_queues(api, platform_admin):
    mrs = build_mrs(api, platform_admin)
    highmem = get(mrs.admin, f"/api/v1/pools/{mrs.highmem}/")
    assert (highmem["name"], highmem["node_selector"], highmem["kind"]) == ("highmem", "HighMEM", "yarn")
    assert (highmem["cpu_capacity"], highmem["memory_capacity"]) == ("32", "512Gi")
    top = get(mrs.admin, "/api/v1/tenants/", top_level=True)
    assert names(top) == ["default", "t1", "t2", "t3"]
    rows = sorted(
        (row["tenant_path"], row["pool_name"], row["capacity"], row["max_capacity"])
        for row in get(mrs.admin, "/api/v1/allocations/")["results"]
    )
    assert rows == [
        ("t1", "default", "40", "80"),
        ("t2", "default", "30", "100"),
        ("t3", "default", "20", "100"),
        ("t3", "highmem", "100", "100"),
    ]
    pool = get(mrs.admin, f"/api/v1/pools/{mrs.pool}/")
    assert (pool["cpu_capacity"], pool["memory_capacity"]) == ("64", "256Gi")


def test_mrs_tenant_admins_add_sub_tenants_under_their_own_tenants(api, platform_admin):
    mrs = build_mrs(api, platform_admin)
    user_a = sign_in("usera")

    etl = send(
        user_a,
        "post",
        "/api/v1/tenants/",
        {"parent": mrs.t1, "name": "etl", "allocations": [{"pool": mrs.pool, "capacity": 50}]},
        201,
    )
    adhoc = send(
        user_a,
        "post",
        "/api/v1/tenants/",
        {"parent": mrs.t2, "name": "adhoc", "allocations": [{"pool": mrs.pool, "capacity": "25"}]},
        201,
    )
    assert (etl["path"], etl["level"], etl["parent"]) == ("t1/etl", 2, mrs.t1)
    assert (adhoc["path"], adhoc["level"], adhoc["parent"]) == ("t2/adhoc", 2, mrs.t2)
    assert only_allocation(adhoc)["capacity"] == "25"
    assert names(get(user_a, "/api/v1/tenants/"), "path") == ["t1", "t1/etl", "t2", "t2/adhoc"]
    created = AuditEvent.objects.filter(action="TENANT_CREATED", tenant_path__in=["t1/etl", "t2/adhoc"])
    assert sorted(created.values_list("actor_name", flat=True)) == ["usera", "usera"]

    # A sub-tenant's queue takes a share of its parent's queue: the siblings stay within 100 %.
    body = send(
        user_a,
        "post",
        "/api/v1/tenants/",
        {"parent": mrs.t1, "name": "adhoc", "allocations": [{"pool": mrs.pool, "capacity": 51}]},
        400,
    )
    assert list(body) == ["capacity"] and "so 50 % is left" in body["capacity"][0]

    # A sets up the sub-tenant's resources, but not the tenant she was given: that is set from above.
    changed = send(user_a, "patch", f"/api/v1/allocations/{only_allocation(etl)['id']}/", {"capacity": 60})
    assert changed["capacity"] == "60"
    t1_allocation = get(user_a, "/api/v1/allocations/", tenant=mrs.t1)["results"][0]
    send(user_a, "patch", f"/api/v1/allocations/{t1_allocation['id']}/", {"capacity": 50}, 403)


def test_mrs_a_tenant_admin_cannot_add_sub_tenants_elsewhere(api, platform_admin):
    mrs = build_mrs(api, platform_admin)
    user_b, user_c = sign_in("userb"), sign_in("userc")
    counts = write_counts()

    # B holds no role on t1 and C none on t2: for them those tenants do not exist.
    get(user_b, f"/api/v1/tenants/{mrs.t1}/", status=404)
    get(user_c, f"/api/v1/tenants/{mrs.t2}/", status=404)
    for person, parent in ((user_b, mrs.t1), (user_c, mrs.t2)):
        hidden = send(person, "post", "/api/v1/tenants/", {"parent": parent, "name": "sneaky"}, 400)
        absent = send(person, "post", "/api/v1/tenants/", {"parent": 999999999, "name": "sneaky"}, 400)
        # The refusal is the one for a tenant that does not exist: it confirms nothing about t1/t2.
        assert hidden == {"parent": [f'Invalid pk "{parent}" - object does not exist.']}
        assert absent == {"parent": ['Invalid pk "999999999" - object does not exist.']}
    assert write_counts() == counts
    assert names(get(user_b, "/api/v1/tenants/")) == ["t3"]
    assert names(get(user_c, "/api/v1/tenants/")) == ["t1"]

    # Nor can a tenant admin add a level-1 tenant: the cluster's top level is the platform's.
    refused = send(user_c, "post", "/api/v1/tenants/", {"name": "t4"}, 403)
    assert refused == {"detail": "Only platform admins may do this."}
    assert write_counts() == counts


def test_mrs_hdfs_directories_have_space_and_file_quotas(api, platform_admin):
    mrs = build_mrs(api, platform_admin)
    admin = mrs.admin
    for tenant in (mrs.t1, mrs.t2, mrs.t3):
        directory = send(
            admin,
            "post",
            "/api/v1/storage/",
            {"tenant": tenant, "cluster": mrs.cluster, "space_quota": "10Ti", "file_quota": 1000000},
            201,
        )
        assert (directory["space_quota"], directory["file_quota"]) == ("10Ti", 1000000)
    rows = get(admin, "/api/v1/storage/", cluster=mrs.cluster)["results"]
    assert [(r["path"], r["tenant_path"], r["space_quota"], r["file_quota"]) for r in rows] == [
        ("/tenant/t1", "t1", "10Ti", 1000000),
        ("/tenant/t2", "t2", "10Ti", 1000000),
        ("/tenant/t3", "t3", "10Ti", 1000000),
    ]
    assert AuditEvent.objects.filter(action="STORAGE_CREATED").count() == 3

    # A sees t1's directory; a sub-tenant she adds gets its own, under t1's.
    user_a = sign_in("usera")
    assert [r["path"] for r in get(user_a, "/api/v1/storage/")["results"]] == ["/tenant/t1", "/tenant/t2"]
    etl = create_tenant(user_a, "etl", mrs.t1, allocations=[{"pool": mrs.pool, "capacity": 50}])
    sub = send(
        user_a,
        "post",
        "/api/v1/storage/",
        {"tenant": etl["id"], "cluster": mrs.cluster, "space_quota": "1Ti", "file_quota": "100k"},
        201,
    )
    assert (sub["path"], sub["space_quota"], sub["file_quota"]) == ("/tenant/t1/etl", "1Ti", 100000)

    # HDFS directories live on Hadoop clusters only.
    k8s = send(admin, "post", "/api/v1/clusters/", {"name": "gpu-cluster", "kind": "kubernetes"}, 201)
    body = send(admin, "post", "/api/v1/storage/", {"tenant": mrs.t1, "cluster": k8s["id"]}, 400)
    assert list(body) == ["cluster"] and "not a Hadoop cluster" in body["cluster"][0]


def test_mrs_t1_members_are_a_and_c(api, platform_admin):
    mrs = build_mrs(api, platform_admin)
    for person in (mrs.admin, sign_in("usera"), sign_in("userc")):
        rows = get(person, "/api/v1/memberships/", tenant=mrs.t1)["results"]
        assert [(r["user"], r["role"], r["tenant_path"]) for r in rows] == [
            ("usera", "admin", "t1"),
            ("userc", "admin", "t1"),
        ]
    # Users and tenants are many-to-many: A holds t1 and t2.
    user_a = get(mrs.admin, "/api/v1/users/", username="usera")["results"][0]
    assert [(m["tenant_path"], m["role"]) for m in user_a["memberships"]] == [
        ("t1", "admin"),
        ("t2", "admin"),
    ]
    # B sees nothing of t1's people.
    assert get(sign_in("userb"), "/api/v1/memberships/", tenant=mrs.t1)["count"] == 0


def test_mrs_queue_capacities_read_back_as_plain_percentages(api, platform_admin):
    mrs = build_mrs(api, platform_admin)
    create_tenant(mrs.admin, "etl", mrs.t1, allocations=[{"pool": mrs.pool, "capacity": 50}])
    t1 = only_allocation(get(mrs.admin, f"/api/v1/tenants/{mrs.t1}/"))
    assert (t1["capacity"], t1["max_capacity"]) == ("40", "80")
    assert (t1["children"]["capacity"], t1["remaining"]["capacity"]) == ("50", "50")
    event = AuditEvent.objects.get(action="TENANT_CREATED", tenant_path="t1")
    assert event.after["allocations"][0]["capacity_percent"] == "40"


# ---------------------------------------------------------------------------------------------
# Token authentication


def test_a_token_is_handed_out_for_a_username_and_password(api, platform_admin):
    admin = api.as_user(platform_admin)
    create_user(admin, "bob")
    anonymous = APIClient()

    token = send(anonymous, "post", "/api/v1/auth/token/", {"username": "bob", "password": PASSWORD})
    assert list(token) == ["token", "expiry"] and len(token["token"]) == 64
    # Only a digest is stored, so each request hands out a new token; both work.
    again = send(anonymous, "post", "/api/v1/auth/token/", {"username": "bob", "password": PASSWORD})
    assert again["token"] != token["token"]

    for key in (token["token"], again["token"]):
        bob = APIClient()
        bob.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert [u["username"] for u in get(bob, "/api/v1/users/")["results"]] == ["bob"]

    wrong = send(anonymous, "post", "/api/v1/auth/token/", {"username": "bob", "password": "not-it"}, 400)
    assert wrong == {"non_field_errors": ["Unable to log in with provided credentials."]}
    unknown = send(
        anonymous, "post", "/api/v1/auth/token/", {"username": "nobody", "password": PASSWORD}, 400
    )
    assert unknown == wrong


def test_no_credentials_or_a_bad_token_is_refused(anonymous_api, platform_admin):
    response = anonymous_api.get("/api/v1/tenants/")
    assert response.status_code in (401, 403)
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    anonymous_api.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    response = anonymous_api.get("/api/v1/tenants/")
    assert response.status_code in (401, 403) and response.json() == {"detail": "Invalid token."}
    assert anonymous_api.post("/api/v1/tenants/", {"name": "x"}, format="json").status_code in (401, 403)
    assert not Tenant.objects.filter(name="x").exists()


def test_a_deactivated_users_token_stops_working(api, platform_admin):
    admin = api.as_user(platform_admin)
    bob_id = create_user(admin, "bob")["id"]
    bob = sign_in("bob")
    get(bob, "/api/v1/tenants/")
    send(admin, "patch", f"/api/v1/users/{bob_id}/", {"is_active": False})
    response = bob.get("/api/v1/tenants/")
    assert response.status_code in (401, 403)
    send(APIClient(), "post", "/api/v1/auth/token/", {"username": "bob", "password": PASSWORD}, 400)
