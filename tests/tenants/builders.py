"""Build test worlds through the services, exactly as the product would (no rows behind its back)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace

from django.contrib.auth import get_user_model
from knox.models import AuthToken
from rest_framework.test import APIClient

from tenants import services
from tenants.models import Cluster, Membership, NfsShare, ResourcePool, Tenant
from tenants.quantities import parse_memory_bytes
from tests.factories import UserFactory

User = get_user_model()
GI = parse_memory_bytes("1Gi")


class TokenClient(APIClient):
    def as_user(self, user) -> TokenClient:
        _, key = AuthToken.objects.create(user=user)
        self.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return self


def user(username: str, **kwargs) -> User:
    return UserFactory(username=username, **kwargs)


def spec(pool: ResourcePool, **amounts) -> services.AllocationSpec:
    return services.AllocationSpec(pool=pool, **amounts)


def nfs_share(
    admin: User,
    cluster: Cluster,
    *,
    name: str = "nas",
    base_path: str = "/share",
    server: str = "nas.example.com",
    granted_to: tuple[Tenant, ...] | list[Tenant] = (),
) -> NfsShare:
    """A share registered by a platform admin, granted to these tenants (and so their subtrees)."""
    share = services.nfs_share_create(
        acting_user=admin,
        spec=services.NfsShareSpec(cluster=cluster, name=name, server=server, base_path=base_path),
    )
    for tenant in granted_to:
        services.nfs_share_grant(acting_user=admin, share=share, tenant=tenant)
    return share


@dataclass
class K8sWorld:
    admin: User
    cluster: Cluster
    pool: ResourcePool
    department1: Tenant
    dev1: Tenant
    dev2: Tenant
    bob: User
    tom: User
    people: SimpleNamespace
    share: NfsShare  # "nas", /share on nas.example.com, granted to department1


def build_k8s_world(admin: User) -> K8sWorld:
    """The Arena document: 3 GPUs, 12 CPUs, 90 GiB; department1 > dev1 (Bob), dev2 (Tom); the NFS share
    `nas` (nas.example.com:/share) granted to department1."""
    cluster = services.cluster_create(acting_user=admin, name="gpu-cluster", kind=Cluster.Kind.KUBERNETES)
    pool = ResourcePool.objects.get(cluster=cluster, name="default")
    pool = services.pool_update(
        acting_user=admin,
        pool=pool,
        gpu_capacity=3,
        cpu_capacity_millicores=12_000,
        memory_capacity_bytes=90 * GI,
    )
    department1 = services.tenant_create(
        acting_user=admin, parent=None, name="department1", allocations=[spec(pool, gpu=3)]
    )
    dev1 = services.tenant_create(
        acting_user=admin, parent=department1, name="dev1", allocations=[spec(pool, gpu=1)]
    )
    dev2 = services.tenant_create(
        acting_user=admin,
        parent=department1,
        name="dev2",
        allocations=[spec(pool, gpu=2, cpu_millicores=8000, memory_bytes=60 * GI)],
    )
    bob, tom = user("bob"), user("tom")
    services.membership_grant(acting_user=admin, tenant=dev1, user=bob, role=Membership.Role.MEMBER)
    services.membership_grant(acting_user=admin, tenant=dev2, user=tom, role=Membership.Role.MEMBER)
    people = SimpleNamespace(
        dept_admin=user("dept-admin"),
        dev1_admin=user("dev1-admin"),
        dev2_admin=user("dev2-admin"),
        dev1_viewer=user("dev1-viewer"),
        outsider=user("outsider"),
    )
    services.membership_grant(acting_user=admin, tenant=department1, user=people.dept_admin, role="admin")
    services.membership_grant(acting_user=admin, tenant=dev1, user=people.dev1_admin, role="admin")
    services.membership_grant(acting_user=admin, tenant=dev2, user=people.dev2_admin, role="admin")
    services.membership_grant(acting_user=admin, tenant=dev1, user=people.dev1_viewer, role="viewer")
    share = nfs_share(admin, cluster, granted_to=[department1])
    return K8sWorld(admin, cluster, pool, department1, dev1, dev2, bob, tom, people, share)


@dataclass
class YarnWorld:
    admin: User
    cluster: Cluster
    pool: ResourcePool
    highmem: ResourcePool
    t1: Tenant
    t2: Tenant
    t3: Tenant
    a: User
    b: User
    c: User


def build_yarn_world(admin: User) -> YarnWorld:
    """The MRS document: t1, t2, t3 with users A (t1, t2), B (t3), C (t1), each able to add sub-tenants."""
    cluster = services.cluster_create(acting_user=admin, name="bigdata", kind=Cluster.Kind.YARN)
    pool = services.pool_update(
        acting_user=admin,
        pool=ResourcePool.objects.get(cluster=cluster, name="default"),
        cpu_capacity_millicores=64_000,
        memory_capacity_bytes=256 * GI,
    )
    highmem = services.pool_create(
        acting_user=admin,
        cluster=cluster,
        name="highmem",
        node_selector="HighMEM",
        cpu_capacity_millicores=32_000,
        memory_capacity_bytes=512 * GI,
    )
    pct = Decimal
    t1 = services.tenant_create(
        acting_user=admin,
        parent=None,
        name="t1",
        allocations=[spec(pool, capacity_percent=pct(40), max_capacity_percent=pct(80))],
    )
    t2 = services.tenant_create(
        acting_user=admin, parent=None, name="t2", allocations=[spec(pool, capacity_percent=pct(30))]
    )
    t3 = services.tenant_create(
        acting_user=admin,
        parent=None,
        name="t3",
        allocations=[spec(pool, capacity_percent=pct(20)), spec(highmem, capacity_percent=pct(100))],
    )
    a, b, c = user("usera"), user("userb"), user("userc")
    for tenant, person in ((t1, a), (t2, a), (t3, b), (t1, c)):
        services.membership_grant(acting_user=admin, tenant=tenant, user=person, role="admin")
    return YarnWorld(admin, cluster, pool, highmem, t1, t2, t3, a, b, c)
