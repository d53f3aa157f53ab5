"""The two source documents' scenarios as data, built through the services like any other writer.

Kubernetes (the Arena document): cluster `gpu-cluster`, three workers with 1 GPU, 4 CPUs and 30 GiB
each; department1 with dev1 (Bob: 1 GPU, CPU and memory unlimited) and dev2 (Tom: 2 GPUs, 8 CPUs,
60 GiB); volumes dev1-public, dev2-public and department1-public shared by dev1 and dev2, directories
of the NFS share department1-nas granted to department1.

Hadoop (the MRS document): cluster `bigdata` with a default pool and a `highmem` pool from the
HighMEM node label; tenants t1, t2, t3 (users A, B, C as tenant admins), a level-2 sub-tenant of t1,
HDFS directories with space and file-count quotas.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from tenants import services
from tenants.models import (
    AllocationGrant,
    Cluster,
    Membership,
    NfsShare,
    QuotaPlan,
    ResourcePool,
    Tenant,
    Volume,
)
from tenants.quantities import parse_memory_bytes

if TYPE_CHECKING:
    from django.contrib.auth.models import User
else:
    User = get_user_model()
GI = parse_memory_bytes("1Gi")
TI = parse_memory_bytes("1Ti")

DEMO_USERS = {
    "bob": "Bob (dev1)",
    "tom": "Tom (dev2)",
    "usera": "User A (t1, t2)",
    "userb": "User B (t3)",
    "userc": "User C (t1)",
}


@dataclass
class DemoCredentials:
    admin_username: str
    admin_password: str
    user_password: str


def _user(username: str, password: str, *, staff: bool = False, label: str = "") -> User:
    user, _ = User.objects.get_or_create(username=username)
    user.is_staff = staff
    user.is_superuser = staff
    user.is_active = True
    user.first_name = label
    user.set_password(password)
    user.save()
    return user


def _tenant(admin: User, parent: Tenant | None, name: str, **kwargs: Any) -> Tenant:
    name_path = f"{parent.name_path}/{name}" if parent else name
    existing = Tenant.objects.filter(name_path=name_path).first()
    return existing or services.tenant_create(acting_user=admin, parent=parent, name=name, **kwargs)


def _grant(admin: User, tenant: Tenant, user: User, role: str) -> None:
    if not Membership.objects.filter(tenant=tenant, user=user).exists():
        services.membership_grant(acting_user=admin, tenant=tenant, user=user, role=role)


@transaction.atomic
def load_demo(admin_username: str = "admin") -> DemoCredentials:
    """Create (or reset) the demo. Idempotent: a second run changes only the passwords."""
    admin_password = secrets.token_urlsafe(12)
    user_password = secrets.token_urlsafe(12)
    admin = _user(admin_username, admin_password, staff=True, label="Platform admin")
    users = {name: _user(name, user_password, label=label) for name, label in DEMO_USERS.items()}

    # --- Kubernetes: the Arena document ---------------------------------------------------
    k8s = Cluster.objects.filter(name="gpu-cluster").first() or services.cluster_create(
        acting_user=admin,
        name="gpu-cluster",
        kind=Cluster.Kind.KUBERNETES,
        description="Demo: three GPU workers (worker01-03), 1 GPU, 4 CPUs and 30 GiB each.",
    )
    gpu_pool = ResourcePool.objects.get(cluster=k8s, name=ResourcePool.DEFAULT_NAME)
    if gpu_pool.gpu_capacity == 0:
        services.pool_update(
            acting_user=admin,
            pool=gpu_pool,
            gpu_capacity=3,
            cpu_capacity_millicores=12_000,
            memory_capacity_bytes=90 * GI,
            node_selector="node-role.kubernetes.io/worker=",
        )
    department1 = _tenant(
        admin,
        None,
        "department1",
        display_name="Department 1",
        description="The document's department: dev1 and dev2 share department1-public.",
        allocations=[services.AllocationSpec(pool=gpu_pool, gpu=3)],
    )
    dev1 = _tenant(
        admin,
        department1,
        "dev1",
        display_name="Dev group 1",
        is_leaf=True,
        allocations=[services.AllocationSpec(pool=gpu_pool, gpu=1)],
    )
    dev2 = _tenant(
        admin,
        department1,
        "dev2",
        display_name="Dev group 2",
        is_leaf=True,
        allocations=[
            services.AllocationSpec(pool=gpu_pool, gpu=2, cpu_millicores=8000, memory_bytes=60 * GI)
        ],
    )
    _grant(admin, dev1, users["bob"], Membership.Role.MEMBER)
    _grant(admin, dev2, users["tom"], Membership.Role.MEMBER)
    # A time-bound grant (issue 19): dev2 has 12 CPU for two weeks, then back to its 8.
    if not AllocationGrant.objects.filter(tenant=dev2).exists():
        services.allocation_set(
            acting_user=admin,
            tenant=dev2,
            spec=services.AllocationSpec(pool=gpu_pool, gpu=2, cpu_millicores=12_000, memory_bytes=60 * GI),
            ends_at=timezone.now() + datetime.timedelta(days=14),
        )
    # The NAS is the platform's: one share, granted to department1, out of which its volumes are
    # carved (the document's department1-public-dev1 / -dev2 claims are one directory of it).
    share = NfsShare.objects.filter(cluster=k8s, name="department1-nas").first() or services.nfs_share_create(
        acting_user=admin,
        spec=services.NfsShareSpec(
            cluster=k8s,
            name="department1-nas",
            server="nas.demo.invalid",  # demo data: no such server; the export backend only writes manifests
            base_path="/share",
            description="Demo: department1's NFS export.",
        ),
    )
    if not share.grants.filter(tenant=department1).exists():
        services.nfs_share_grant(acting_user=admin, share=share, tenant=department1)
    volumes = [
        ("dev1-public", "dev1", Volume.Scope.PRIVATE, [dev1]),
        ("dev2-public", "dev2", Volume.Scope.PRIVATE, [dev2]),
        ("department1-public", "department1", Volume.Scope.SHARED, [dev1, dev2]),
    ]
    for name, sub_path, scope, tenants in volumes:
        if not Volume.objects.filter(cluster=k8s, name=name).exists():
            services.volume_create(
                acting_user=admin,
                spec=services.VolumeSpec(
                    share=share,
                    sub_path=sub_path,
                    name=name,
                    capacity_bytes=100 * GI,
                    scope=scope,
                    tenants=tenants,
                ),
            )

    # --- Hadoop: the MRS document ---------------------------------------------------------
    hadoop = Cluster.objects.filter(name="bigdata").first() or services.cluster_create(
        acting_user=admin,
        name="bigdata",
        kind=Cluster.Kind.YARN,
        description="Demo: a Hadoop cluster with YARN (Capacity Scheduler) and HDFS.",
    )
    default_pool = ResourcePool.objects.get(cluster=hadoop, name=ResourcePool.DEFAULT_NAME)
    if default_pool.cpu_capacity_millicores == 0:
        services.pool_update(
            acting_user=admin,
            pool=default_pool,
            cpu_capacity_millicores=64_000,
            memory_capacity_bytes=256 * GI,
        )
    highmem = ResourcePool.objects.filter(cluster=hadoop, name="highmem").first() or services.pool_create(
        acting_user=admin,
        cluster=hadoop,
        name="highmem",
        node_selector="HighMEM",
        description="Nodes labelled HighMEM: memory-intensive queues.",
        cpu_capacity_millicores=32_000,
        memory_capacity_bytes=1 * TI,
    )
    if not QuotaPlan.objects.filter(name="gpu-small").exists():
        services.plan_create(
            acting_user=admin,
            name="gpu-small",
            description="1 GPU, CPU and memory unlimited.",
            allocations=[services.AllocationSpec(pool=gpu_pool, gpu=1)],
        )
    pct = Decimal
    t1 = _tenant(
        admin,
        None,
        "t1",
        display_name="Tenant 1",
        description="Users A and C.",
        allocations=[
            services.AllocationSpec(
                pool=default_pool, capacity_percent=pct(40), max_capacity_percent=pct(80)
            ),
            services.AllocationSpec(pool=highmem, capacity_percent=pct(50), max_capacity_percent=pct(100)),
        ],
        storage=[services.StorageSpec(cluster=hadoop, space_quota_bytes=10 * TI, file_quota=1_000_000)],
    )
    t2 = _tenant(
        admin,
        None,
        "t2",
        display_name="Tenant 2",
        description="User A.",
        allocations=[
            services.AllocationSpec(pool=default_pool, capacity_percent=pct(30), max_capacity_percent=pct(60))
        ],
        storage=[services.StorageSpec(cluster=hadoop, space_quota_bytes=5 * TI, file_quota=500_000)],
    )
    t3 = _tenant(
        admin,
        None,
        "t3",
        display_name="Tenant 3",
        description="User B.",
        allocations=[
            services.AllocationSpec(
                pool=default_pool, capacity_percent=pct(20), max_capacity_percent=pct(50)
            ),
            services.AllocationSpec(pool=highmem, capacity_percent=pct(50), max_capacity_percent=pct(100)),
        ],
        storage=[services.StorageSpec(cluster=hadoop, space_quota_bytes=5 * TI, file_quota=500_000)],
    )
    _tenant(
        admin,
        t1,
        "etl",
        display_name="t1 ETL jobs",
        is_leaf=True,
        allocations=[
            services.AllocationSpec(
                pool=default_pool, capacity_percent=pct(50), max_capacity_percent=pct(100)
            )
        ],
        storage=[services.StorageSpec(cluster=hadoop, space_quota_bytes=2 * TI, file_quota=200_000)],
    )
    _grant(admin, t1, users["usera"], Membership.Role.ADMIN)
    _grant(admin, t2, users["usera"], Membership.Role.ADMIN)
    _grant(admin, t3, users["userb"], Membership.Role.ADMIN)
    _grant(admin, t1, users["userc"], Membership.Role.ADMIN)
    return DemoCredentials(
        admin_username=admin_username, admin_password=admin_password, user_password=user_password
    )
