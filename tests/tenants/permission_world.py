"""Random worlds for the permission property test, and an ORACLE of the permission model.

A `WorldSpec` is plain data drawn by hypothesis: a tenant tree (several level-1 tenants, leaf and
non-leaf, suspended subtrees, down to the deepest level allowed), people (plain, platform admins,
deactivated), groups, roles given to people or groups, and what hangs off the tenants (allocations,
HDFS directories, volumes, usage figures, workloads). `build_world` makes it real through the
services, as a platform admin would.

`Oracle` answers "may this person view / use / administer / manage tenant i?" from the spec alone,
from the rules as documented (tenants/permissions.py's docstring, docs/ARCHITECTURE.md, README's
Roles): it never calls Canopy's permission code, and it reads no tree paths from the database.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from hypothesis import strategies as st

from provisioning import services as provisioning_services
from tenants import services
from tenants.models import Cluster, ResourcePool, Tenant
from tests.factories import UserFactory
from usage import services as usage_services
from usage.measures import UsageReading, WorkloadReading

User = get_user_model()

# The deepest level the test configures (CANOPY_MAX_TENANT_DEPTH), small so random trees reach it.
MAX_DEPTH = 4
ROLES = ("viewer", "member", "admin")
KINDS = ("plain", "plain", "plain", "staff", "inactive", "inactive_staff")

# Names no other text in a page can contain by accident, so a page's mentions of tenants, people and
# groups can be found with a regular expression: tenant i is "tn<i>z", person i "pp<i>x".
TENANT_NAME = re.compile(r"tn(\d+)z")


def tenant_name(index: int) -> str:
    return f"tn{index}z"


def person_name(index: int) -> str:
    return f"pp{index}x"


def group_name(index: int) -> str:
    return f"gg{index}x"


def usage_marker(index: int) -> float:
    """The GPU figure recorded for tenant i: a series holding any other value is someone else's."""
    return 1000.0 + index


# ---------------------------------------------------------------------------------------------
# The spec


@dataclass(frozen=True)
class NodeSpec:
    parent: int | None
    leaf: bool
    suspended: bool
    allocated: bool  # an allocation in the Kubernetes pool (only where the parent has one)


@dataclass(frozen=True)
class PersonSpec:
    kind: str
    groups: frozenset[int]

    @property
    def active(self) -> bool:
        return not self.kind.startswith("inactive")

    @property
    def staff(self) -> bool:
        return self.kind.endswith("staff")


@dataclass(frozen=True)
class GrantSpec:
    subject: tuple[str, int]  # ("user", person index) or ("group", group index)
    tenant: int
    role: str


@dataclass(frozen=True)
class WorldSpec:
    nodes: tuple[NodeSpec, ...]
    people: tuple[PersonSpec, ...]
    groups: int
    grants: tuple[GrantSpec, ...]
    storage: frozenset[int]
    volumes: tuple[tuple[int, ...], ...]  # the tenants each volume is attached to
    # The tenants each NFS share is granted to. Every volume is a directory of share 0 ("nas0", at
    # sub-path v<number>), which is granted to (at least) each tenant a volume is attached to.
    shares: tuple[frozenset[int], ...]
    usage: frozenset[int]
    workloads: tuple[tuple[int, int], ...]  # (tenant, person who submitted it)

    def depth(self, index: int) -> int:
        parent = self.nodes[index].parent
        return 1 if parent is None else self.depth(parent) + 1

    def ancestors(self, index: int, *, include_self: bool) -> list[int]:
        chain = [index] if include_self else []
        parent = self.nodes[index].parent
        while parent is not None:
            chain.append(parent)
            parent = self.nodes[parent].parent
        return chain

    def children(self, index: int) -> list[int]:
        return [i for i, node in enumerate(self.nodes) if node.parent == index]

    def share_reaches(self, share: int, index: int) -> bool:
        """A share granted to a tenant is usable in its whole subtree."""
        return bool(self.shares[share] & set(self.ancestors(index, include_self=True)))

    def name_path(self, index: int) -> str:
        return "/".join(tenant_name(i) for i in reversed(self.ancestors(index, include_self=True)))


@st.composite
def trees(draw: Any, max_nodes: int) -> tuple[NodeSpec, ...]:
    """Up to `max_nodes` tenants: each a level-1 tenant or the child of an earlier non-leaf tenant
    above the deepest level; at least two level-1 tenants, the first one allocated."""
    count = draw(st.integers(min_value=2, max_value=max_nodes))
    nodes: list[NodeSpec] = []
    depths: list[int] = []
    for index in range(count):
        parents: list[int | None] = [None]
        if index >= 2:  # the first two are level-1
            # The most recent tenant first, so hypothesis reaches deep chains as easily as wide ones.
            parents = [i for i in reversed(range(index)) if not nodes[i].leaf and depths[i] < MAX_DEPTH] + [
                None
            ]
        parent = draw(st.sampled_from(parents))
        parent_allocated = parent is None or nodes[parent].allocated
        nodes.append(
            NodeSpec(
                parent=parent,
                leaf=draw(st.booleans()),
                suspended=draw(st.booleans()) if index else False,
                allocated=index == 0 or (parent_allocated and draw(st.booleans())),
            )
        )
        depths.append(1 if parent is None else depths[parent] + 1)
    return tuple(nodes)


@st.composite
def worlds(draw: Any, max_nodes: int = 7, max_people: int = 5) -> WorldSpec:
    nodes = draw(trees(max_nodes))
    tenant_ids = st.integers(min_value=0, max_value=len(nodes) - 1)
    group_count = draw(st.integers(min_value=0, max_value=2))
    people = tuple(
        PersonSpec(
            kind=draw(st.sampled_from(KINDS)),
            groups=draw(st.frozensets(st.integers(0, group_count - 1), max_size=group_count))
            if group_count
            else frozenset(),
        )
        for _ in range(draw(st.integers(min_value=1, max_value=max_people)))
    )
    volumes = tuple(
        tuple(sorted(attached))
        for attached in draw(
            st.lists(st.frozensets(tenant_ids, min_size=1, max_size=2), min_size=1, max_size=2)
        )
    )
    attached_anywhere = frozenset(i for attached in volumes for i in attached)
    shares = (
        attached_anywhere | draw(st.frozensets(tenant_ids, max_size=2)),
        draw(st.frozensets(tenant_ids, max_size=2)),
    )
    subjects = [("user", i) for i in range(len(people))] + [("group", j) for j in range(group_count)]
    raw_grants = draw(
        st.lists(
            st.tuples(st.sampled_from(subjects), tenant_ids, st.sampled_from(ROLES)),
            min_size=1,
            max_size=8,
            unique_by=lambda grant: (grant[0], grant[1]),
        )
    )
    return WorldSpec(
        nodes=nodes,
        people=people,
        groups=group_count,
        grants=tuple(GrantSpec(subject, tenant, role) for subject, tenant, role in raw_grants),
        storage=draw(st.frozensets(tenant_ids, min_size=1, max_size=3)),
        volumes=volumes,
        shares=shares,
        usage=draw(st.frozensets(tenant_ids, min_size=1, max_size=len(nodes))),
        workloads=tuple(
            draw(
                st.lists(
                    st.tuples(tenant_ids, st.integers(0, len(people) - 1)),
                    min_size=1,
                    max_size=3,
                    unique_by=lambda w: w[0],
                )
            )
        ),
    )


# ---------------------------------------------------------------------------------------------
# The oracle

# What a member or viewer reads the details of, from docs/security.md: changes to the tenant itself
# (created, changed, moved, a plan applied), to its allocations, HDFS directories, services (Hive
# databases) and memberships, and pushes asked for. Not: suspensions (they count the hidden sub-tenants), volumes and NFS grants
# (the share, read by tenant admins; a shared volume's other tenants), kubeconfig downloads
# (someone's address).
DETAILS_FOR_MEMBERS_AND_VIEWERS = {
    "TENANT_CREATED",
    "TENANT_UPDATED",
    "TENANT_MOVED",
    "TENANT_PLAN_APPLIED",
    "ALLOCATION_CREATED",
    "ALLOCATION_UPDATED",
    "ALLOCATION_DELETED",
    "STORAGE_CREATED",
    "STORAGE_UPDATED",
    "STORAGE_DELETED",
    "TENANT_SERVICE_CREATED",
    "TENANT_SERVICE_DELETED",
    "MEMBERSHIP_GRANTED",
    "MEMBERSHIP_CHANGED",
    "MEMBERSHIP_REVOKED",
    "PROVISIONING_REQUESTED",
}


class Oracle:
    """What person `observer` of `spec` (None: anonymous) may do, from the documented rules:

    - nobody signed in, or a deactivated account: nothing;
    - platform admins (active staff): everything;
    - any role on a tenant (viewer, member, admin; the person's own or one of their groups'):
      *view* it;
    - member or admin: *use* it (usage, workloads, kubeconfig);
    - admin of a tenant or of any ancestor: view, use and *administer* it (sub-tenants, members,
      description);
    - admin of a strict ancestor: *manage* it (allocations, storage, volumes, state, deletion).
    """

    def __init__(self, spec: WorldSpec, observer: int | None) -> None:
        self.spec = spec
        person = spec.people[observer] if observer is not None else None
        self.signed_in = person is not None and person.active
        self.platform = self.signed_in and person is not None and person.staff
        self.roles: dict[int, set[str]] = {}
        if self.signed_in and person is not None:
            for grant in spec.grants:
                kind, subject = grant.subject
                if (kind == "user" and subject == observer) or (kind == "group" and subject in person.groups):
                    self.roles.setdefault(grant.tenant, set()).add(grant.role)

    def _admin_on(self, indices: list[int]) -> bool:
        return any("admin" in self.roles.get(i, ()) for i in indices)

    def may(self, action: str, index: int | None) -> bool:
        """`index` None is the `default` tenant, which no spec grants anything on."""
        if not self.signed_in:
            return False
        if self.platform:
            return True
        if index is None:
            return False
        own = self.roles.get(index, set())
        if action == "manage":
            return self._admin_on(self.spec.ancestors(index, include_self=False))
        administers = self._admin_on(self.spec.ancestors(index, include_self=True))
        if action == "administer":
            return administers
        if action == "use":
            return administers or bool(own & {"member", "admin"})
        if action == "view":
            return administers or bool(own)
        raise ValueError(action)

    def tenants(self, action: str) -> set[int]:
        return {i for i in range(len(self.spec.nodes)) if self.may(action, i)}

    @cached_property
    def nameable(self) -> set[int]:
        """Tenants whose names the person may read: those they see and their ancestors (every
        tenant's path names its ancestors)."""
        return {a for i in self.tenants("view") for a in self.spec.ancestors(i, include_self=True)}

    def people_visible(self, observer: int | None) -> set[int]:
        """People a person sees: platform admins everyone; others themselves and whoever holds a
        role (directly or through a group) on a tenant they can see."""
        if not self.signed_in or observer is None:
            return set()
        everyone = range(len(self.spec.people))
        if self.platform:
            return set(everyone)
        seen = {observer}
        for grant in self.spec.grants:
            if not self.may("view", grant.tenant):
                continue
            kind, subject = grant.subject
            if kind == "user":
                seen.add(subject)
            else:
                seen |= {i for i in everyone if subject in self.spec.people[i].groups}
        return seen

    # Audit rows (docs/security.md, *Who reads which audit rows*) -----------------------------

    def reads_audit_row(self, tenant: int | None, about: int | None) -> bool:
        """A row recorded on tenant `tenant` (None: no tenant, or one deleted since), about tenant
        `about` (None: about something else, a membership, an allocation, ...): platform admins read
        every row; rows of no tenant are theirs alone; an admin of the tenant or of an ancestor reads
        its rows; anyone else holding a role on that very tenant reads its rows about itself, not a
        row about another tenant recorded there (a sub-tenant's deletion, on its parent)."""
        if not self.signed_in:
            return False
        if self.platform:
            return True
        if tenant is None:
            return False
        if self.may("administer", tenant):
            return True
        return bool(self.roles.get(tenant)) and about in (None, tenant)

    @cached_property
    def _held_paths(self) -> set[str]:
        return {self.spec.name_path(i) for i in self.roles}

    @cached_property
    def _administered_paths(self) -> set[str]:
        return {self.spec.name_path(i) for i, roles in self.roles.items() if "admin" in roles}

    def reads_path(self, path: str) -> bool:
        """Whether a path of names in a row says nothing the person may not know now: it is (or is
        above) a tenant they hold a role on, or it lies in a subtree they administer."""
        if self.platform:
            return True
        return any(held == path or held.startswith(f"{path}/") for held in self._held_paths) or any(
            path == top or path.startswith(f"{top}/") for top in self._administered_paths
        )

    def reads_audit_details(self, action: str, tenant: int | None, paths: list[str]) -> bool:
        """The details of a row the person reads (before, after, its target): platform admins
        always; anyone else when they administer the tenant or the action is one whose details
        describe only the tenant itself, and every path of names the row holds is one they may read."""
        if self.platform:
            return True
        if tenant is None:
            return False
        describes_the_tenant = action in DETAILS_FOR_MEMBERS_AND_VIEWERS
        return (self.may("administer", tenant) or describes_the_tenant) and all(map(self.reads_path, paths))

    def groups_visible(self, observer: int | None) -> set[int]:
        """Groups a person sees, by the same measure as people: platform admins every group; others
        their own and those holding a role on a tenant they can see."""
        if not self.signed_in or observer is None:
            return set()
        if self.platform:
            return set(range(self.spec.groups))
        seen = set(self.spec.people[observer].groups)
        for grant in self.spec.grants:
            kind, subject = grant.subject
            if kind == "group" and self.may("view", grant.tenant):
                seen.add(subject)
        return seen

    def creates_tenants(self) -> bool:
        """Platform admins (level-1 tenants), and admins of a tenant that may have sub-tenants."""
        return self.platform or any(
            self.may("administer", index) and not node.leaf for index, node in enumerate(self.spec.nodes)
        )

    def administers_anything(self) -> bool:
        return self.platform or any("admin" in roles for roles in self.roles.values())

    def sees_share(self, share: int) -> bool:
        """NFS shares are the platform's; a tenant admin reads those usable somewhere in what they
        administer: granted to a tenant of their subtree or to one above it."""
        if not self.signed_in:
            return False
        if self.platform:
            return True
        administered = {i for i, roles in self.roles.items() if "admin" in roles}
        return any(
            granted in self.spec.ancestors(top, include_self=True)
            or top in self.spec.ancestors(granted, include_self=True)
            for top in administered
            for granted in self.spec.shares[share]
        )


# ---------------------------------------------------------------------------------------------
# The world, made real through the services


@dataclass
class World:
    spec: WorldSpec
    admin: Any
    kubernetes: Cluster
    pool: ResourcePool
    hadoop: Cluster
    spare_kubernetes: Cluster
    spare_hadoop: Cluster
    spare_pool: ResourcePool
    plan: Any
    newcomer: Any  # an active person with no role anywhere, to be granted one
    shares: list[Any] = field(default_factory=list)
    tenants: list[Tenant] = field(default_factory=list)
    people: list[Any] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)

    @cached_property
    def index_of(self) -> dict[int, int | None]:
        """Tenant id -> spec index; the `default` tenant (and anything else) -> None."""
        return {tenant.pk: i for i, tenant in enumerate(self.tenants)}

    def person_index(self, user: Any) -> int | None:
        return next((i for i, p in enumerate(self.people) if p.pk == user.pk), None)


def build_world(spec: WorldSpec, admin: Any) -> World:
    kubernetes = services.cluster_create(acting_user=admin, name="kc", kind=Cluster.Kind.KUBERNETES)
    pool = services.pool_update(
        acting_user=admin,
        pool=ResourcePool.objects.get(cluster=kubernetes),
        gpu_capacity=8,
        cpu_capacity_millicores=64_000,
        memory_capacity_bytes=2**37,
    )
    hadoop = services.cluster_create(acting_user=admin, name="yc", kind=Cluster.Kind.YARN)
    spare_kubernetes = services.cluster_create(acting_user=admin, name="sk", kind=Cluster.Kind.KUBERNETES)
    spare_hadoop = services.cluster_create(acting_user=admin, name="sy", kind=Cluster.Kind.YARN)
    spare_pool = services.pool_create(acting_user=admin, cluster=spare_kubernetes, name="extra")
    plan = services.plan_create(acting_user=admin, name="empty-plan")
    provisioning_services.connection_set(
        acting_user=admin, cluster=kubernetes, spec=provisioning_services.ConnectionSpec(mode="export")
    )
    provisioning_services.hadoop_connection_set(
        acting_user=admin,
        cluster=hadoop,
        spec=provisioning_services.HadoopConnectionSpec(
            rm_urls="http://127.0.0.1:9", webhdfs_urls="http://127.0.0.1:9", user="canopy"
        ),
    )
    world = World(
        spec=spec,
        admin=admin,
        kubernetes=kubernetes,
        pool=pool,
        hadoop=hadoop,
        spare_kubernetes=spare_kubernetes,
        spare_hadoop=spare_hadoop,
        spare_pool=spare_pool,
        plan=plan,
        newcomer=UserFactory(username="newcomer"),
    )
    zero = {"gpu": 0, "cpu_millicores": 0, "memory_bytes": 0}
    for index, node in enumerate(spec.nodes):
        parent = world.tenants[node.parent] if node.parent is not None else None
        world.tenants.append(
            services.tenant_create(
                acting_user=admin,
                parent=parent,
                name=tenant_name(index),
                is_leaf=node.leaf,
                allocations=[services.AllocationSpec(pool=pool, **zero)] if node.allocated else [],
            )
        )
    # A time-bound grant (issue 19): the first level-1 tenant (always allocated) has a GPU until tomorrow.
    services.allocation_set(
        acting_user=admin,
        tenant=world.tenants[0],
        spec=services.AllocationSpec(pool=pool, **{**zero, "gpu": 1}),
        ends_at=timezone.now() + datetime.timedelta(days=1),
    )
    for index, node in enumerate(spec.nodes):
        if node.suspended:  # the whole subtree, as the console does it
            services.tenant_set_state(
                acting_user=admin, tenant=world.tenants[index], state=Tenant.State.SUSPENDED
            )
    world.groups = [Group.objects.create(name=group_name(j)) for j in range(spec.groups)]
    for index, person in enumerate(spec.people):
        # Everyone starts active: deactivated people got their roles before they were deactivated.
        user = UserFactory(username=person_name(index), is_staff=person.staff)
        user.groups.set([world.groups[j] for j in person.groups])
        world.people.append(user)
    for grant in spec.grants:
        kind, subject = grant.subject
        who = {"user": world.people[subject]} if kind == "user" else {"group": world.groups[subject]}
        services.membership_grant(
            acting_user=admin, tenant=world.tenants[grant.tenant], role=grant.role, **who
        )
    for index, person in enumerate(spec.people):
        if not person.active:
            services.user_update(acting_user=admin, user=world.people[index], is_active=False)
    for index in sorted(spec.storage):
        services.storage_create(
            acting_user=admin, tenant=world.tenants[index], spec=services.StorageSpec(cluster=hadoop)
        )
        # The same tenants use a Hive database each (tenant services).
        services.tenant_service_create(
            acting_user=admin,
            tenant=world.tenants[index],
            cluster=hadoop,
            kind="hive_database",
            name=f"hive{index}",
        )
    for number, granted in enumerate(spec.shares):
        share = services.nfs_share_create(
            acting_user=admin,
            spec=services.NfsShareSpec(
                cluster=kubernetes, name=f"nas{number}", server="nas", base_path=f"/share{number}"
            ),
        )
        for index in sorted(granted):
            services.nfs_share_grant(acting_user=admin, share=share, tenant=world.tenants[index])
        world.shares.append(share)
    for number, attached in enumerate(spec.volumes):
        services.volume_create(
            acting_user=admin,
            spec=services.VolumeSpec(
                share=world.shares[0],
                sub_path=f"v{number}",
                name=f"vol{number}",
                capacity_bytes=2**30,
                scope="private" if len(attached) == 1 else "shared",
                tenants=[world.tenants[i] for i in attached],
            ),
        )
    now = timezone.now()
    usage_services.usage_record(
        cluster=kubernetes,
        time=now - datetime.timedelta(minutes=2),
        readings=[
            UsageReading(
                tenant_id=world.tenants[i].pk,
                figures={"gpu_used": usage_marker(i), "gpu_allocated": usage_marker(i)},
                subtree=True,
            )
            for i in sorted(spec.usage)
        ],
        workloads=[
            WorkloadReading(
                tenant_id=world.tenants[i].pk,
                kind="Pod",
                namespace=f"ns{i}",
                name=f"job{i}",
                submitted_by="sa",
                state="running",
                username=person_name(who),
                started_at=now - datetime.timedelta(minutes=5),
            )
            for i, who in spec.workloads
        ],
    )
    return world
