"""Pure functions: the tenants of one Hadoop cluster -> Capacity Scheduler queues and HDFS directories.

No I/O. The backend (`provisioning.backends.yarn`) diffs these objects with the live scheduler
configuration and the NameNode and applies the difference.

Objects have the same shape as Kubernetes manifests so the shared planner in
`provisioning.backends.base` compares them:

    {"apiVersion": "canopy.io/yarn", "kind": "YarnQueue", "metadata": {"name": "root.t1"},
     "spec": {"capacity": "40", "maximum-capacity": "80", ...}}
    {"apiVersion": "canopy.io/hdfs", "kind": "HdfsDirectory", "metadata": {"name": "/tenant/t1"},
     "spec": {"owner": ..., "group": ..., "permission": "750", "acl": [...], "namespaceQuota": ..., ...}}

Queue `spec` keys are the Capacity Scheduler's own, relative to the queue (what the scheduler-conf
mutation API takes in `params`).

The capacity rule. YARN wants the capacities of a parent's children to add up to exactly 100 in
every partition; Canopy lets a parent hand out less (what it keeps is its own). So every parent gets
one extra leaf, `<parent>.default` (`root.default` is the cluster's own), holding the remainder:
the parent tenant's own work runs there, since a YARN parent queue takes no applications. Requiring
allocations to add up to 100 instead would make every new sub-tenant a two-tenant edit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from tenants.cluster_names import is_cluster_name, name_problem

QUEUE_KIND = "YarnQueue"
DIRECTORY_KIND = "HdfsDirectory"
QUEUE_API = "canopy.io/yarn"
DIRECTORY_API = "canopy.io/hdfs"
ROOT = "root"
DEFAULT_PARTITION = ""
MANAGED_KEY = "canopy-managed"  # a queue property the Capacity Scheduler ignores; marks our queues
TENANT_KEY = "canopy-tenant"
HUNDRED = Decimal(100)
LOCKED_ACL = " "  # YARN's "nobody"
NO_LABELS = " "  # YARN's "no node labels"


class RuleViolation(ValueError):
    """The configuration would break a Capacity Scheduler rule; nothing was sent."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class QueueShare:
    """A tenant's share of one partition: `label` "" is the default partition (the default pool)."""

    label: str
    capacity: Decimal
    maximum: Decimal | None = None


@dataclass(frozen=True)
class StorageDir:
    path: str
    space_quota_bytes: int | None = None
    file_quota: int | None = None


@dataclass(frozen=True)
class YarnTenant:
    tenant_id: int
    path: str  # "t1/sub"
    group: str  # the tenant's Hadoop group (its namespace name: path with '/' as '-')
    shares: tuple[QueueShare, ...] = ()
    suspended: bool = False
    submit_users: tuple[str, ...] = ()
    submit_groups: tuple[str, ...] = ()
    admin_users: tuple[str, ...] = ()
    admin_groups: tuple[str, ...] = ()
    read_users: tuple[str, ...] = ()
    directories: tuple[StorageDir, ...] = ()


@dataclass(frozen=True)
class YarnSettings:
    remainder_queue: str = "default"
    user_limit_factor: str = "1"
    minimum_user_limit_percent: str = "100"
    directory_owner: str = "hdfs"
    directory_permission: str = "750"
    lock_root: bool = True


@dataclass(frozen=True)
class ForeignQueue:
    """A queue Canopy does not manage, under a parent whose children Canopy plans (made by hand
    under root, say). Its capacities are fixed: they count against the parent's 100 % in each
    partition, and the parent's remainder leaf gets what is left. `capacities` maps a partition
    ("" the default one) to the value as the RM holds it (a weight or absolute value is refused,
    since Canopy plans siblings in percent)."""

    path: str
    capacities: Mapping[str, str] = field(default_factory=dict)

    @property
    def parent(self) -> str:
        return self.path.rpartition(".")[0]


@dataclass
class _Queue:
    path: str
    params: dict[str, str] = field(default_factory=dict)


def queue_path(tenant_path: str) -> str:
    """'department1/dev1' -> 'root.department1.dev1' (YARN allows '-'; '.' is its separator)."""
    return ".".join([ROOT, *tenant_path.split("/")])


def percent(value: Decimal | int) -> str:
    """40 -> '40', Decimal('12.50') -> '12.5' (the form the RM stores and returns)."""
    text = format(Decimal(value).normalize(), "f")
    return text


def queue_acl(users: Iterable[str], groups: Iterable[str]) -> str:
    """A YARN queue ACL, "user1,user2 group1,group2" (" ": nobody). A name YARN would read as syntax
    ("*" is everyone, ',' and ' ' separate names) is left out, never written: only a row older than
    the rule in tenants.cluster_names can hold one, and `names_left_out` says which."""
    users = sorted({name for name in users if is_cluster_name(name)})
    groups = sorted({name for name in groups if is_cluster_name(name)})
    if not users and not groups:
        return LOCKED_ACL
    return f"{','.join(users)} {','.join(groups)}".rstrip()


def names_left_out(tenants: Iterable[YarnTenant]) -> list[str]:
    """Why names holding a role were left out of the tenants' queue and HDFS ACLs (see `queue_acl`)."""
    reasons = []
    for tenant in tenants:
        users = {*tenant.submit_users, *tenant.admin_users, *tenant.read_users}
        groups = {*tenant.submit_groups, *tenant.admin_groups}
        for kind, names in (("user", users), ("group", groups)):
            for name in sorted(names):
                if problem := name_problem(name):
                    reasons.append(f"A {kind} of {tenant.path} is left out of its ACLs. {problem}")
    return reasons


def _queue_object(path: str, params: Mapping[str, str]) -> dict:
    return {"apiVersion": QUEUE_API, "kind": QUEUE_KIND, "metadata": {"name": path}, "spec": dict(params)}


def _partition_params(shares: Iterable[tuple[str, Decimal, Decimal]]) -> dict[str, str]:
    params: dict[str, str] = {}
    labels = []
    for label, capacity, maximum in shares:
        if label == DEFAULT_PARTITION:
            params["capacity"] = percent(capacity)
            params["maximum-capacity"] = percent(maximum)
        else:
            labels.append(label)
            params[f"accessible-node-labels.{label}.capacity"] = percent(capacity)
            params[f"accessible-node-labels.{label}.maximum-capacity"] = percent(maximum)
    params.setdefault("capacity", "0")
    params.setdefault("maximum-capacity", "100")
    if labels:
        params["accessible-node-labels"] = ",".join(sorted(labels))
    return params


def name_problems(tenants: Iterable[YarnTenant], settings: YarnSettings) -> list[str]:
    problems = []
    for tenant in tenants:
        for name in tenant.path.split("/"):
            if not name or "." in name or " " in name or ":" in name:
                problems.append(f"Queue name {name!r} of {tenant.path}: no dots, spaces or colons.")
            elif name == settings.remainder_queue:
                problems.append(
                    f"{tenant.path}: {name!r} is the queue that holds what a parent's children do not "
                    f"take (root.{name} is the cluster's own); rename the tenant."
                )
    return problems


def desired_objects(
    tenants: Iterable[YarnTenant],
    settings: YarnSettings,
    *,
    hdfs_root: str = "/tenant",
    partitions: Iterable[str] = (),
    foreign: Iterable[ForeignQueue] = (),
    directories_of: Iterable[int] | None = None,
) -> list[dict]:
    """Every queue and directory Canopy wants on the cluster (the whole tree: sibling capacities
    depend on each other, so a YARN cluster is planned as one). `foreign` are the queues Canopy
    does not own among the children it plans (read from the RM): what they take is not the
    remainder leaf's. `partitions` are the node labels of the cluster's pools: root spans each,
    and root.default holds what the tenants do not take of it (all of it once no tenant uses it).
    `directories_of`: only these tenants' directories (a push of one tenant: the queue tree is
    shared, directories are not); None: every tenant's.

    Raises `RuleViolation` when the result would break a Capacity Scheduler rule."""
    tenants = sorted(tenants, key=lambda t: t.path)
    problems = name_problems(tenants, settings)
    by_path = {t.path: t for t in tenants}
    children: dict[str, list[YarnTenant]] = defaultdict(list)
    children[ROOT] = []  # root.default takes what the tenants do not, even when there are none
    for tenant in tenants:
        parent = tenant.path.rpartition("/")[0]
        if parent and parent not in by_path:
            problems.append(f"{tenant.path} has a queue but its parent {parent} has none on this cluster.")
            continue
        children[queue_path(parent) if parent else ROOT].append(tenant)

    labels_in_use = sorted({s.label for t in tenants for s in t.shares if s.label} | set(partitions) - {""})
    queues: dict[str, _Queue] = {}
    root = _Queue(ROOT)
    if settings.lock_root:
        root.params.update(acl_submit_applications=LOCKED_ACL, acl_administer_queue=LOCKED_ACL)
    for label in labels_in_use:
        root.params[f"accessible-node-labels.{label}.capacity"] = "100"
        root.params[f"accessible-node-labels.{label}.maximum-capacity"] = "100"
    queues[ROOT] = root

    for tenant in tenants:
        path = queue_path(tenant.path)
        shares = [
            (s.label, s.capacity, s.maximum if s.maximum is not None else HUNDRED) for s in tenant.shares
        ]
        params = _partition_params(shares)
        # Unset, a queue inherits its parent's labels (root's is "*": every partition, up to 100 %).
        params.setdefault("accessible-node-labels", NO_LABELS)
        is_parent = path in children
        admins = queue_acl(tenant.admin_users, tenant.admin_groups)
        params.update(
            {
                "state": "STOPPED" if tenant.suspended else "RUNNING",
                "acl_administer_queue": admins,
                # A parent queue takes no applications; its members submit to its remainder leaf,
                # and YARN's ACL inheritance would otherwise open every sub-tenant to them.
                "acl_submit_applications": admins
                if is_parent
                else queue_acl(tenant.submit_users, tenant.submit_groups),
                MANAGED_KEY: "true",
                TENANT_KEY: str(tenant.tenant_id),
            }
        )
        if not is_parent:
            params["user-limit-factor"] = settings.user_limit_factor
            params["minimum-user-limit-percent"] = settings.minimum_user_limit_percent
        queues[path] = _Queue(path, params)

    # A hand-made queue with a tenant's name is not counted: the backend refuses to take it over.
    foreign_by_parent: dict[str, list[ForeignQueue]] = defaultdict(list)
    for other in foreign:
        if other.path not in queues and other.parent in children:
            foreign_by_parent[other.parent].append(other)

    # The remainder of every parent, per partition, goes to its `default` leaf.
    for parent, kids in children.items():
        owner = by_path.get(parent.removeprefix(ROOT + ".").replace(".", "/")) if parent != ROOT else None
        parent_labels = labels_in_use if owner is None else sorted({s.label for s in owner.shares if s.label})
        taken: dict[str, Decimal] = defaultdict(Decimal)
        fixed: dict[str, list[str]] = defaultdict(list)  # partition -> "root.adhoc (30%)"
        for other in sorted(foreign_by_parent[parent], key=lambda q: q.path):
            for label in [DEFAULT_PARTITION, *parent_labels]:
                value = other.capacities.get(label)
                if value is None:
                    continue  # YARN's default: the queue takes nothing of that partition
                try:
                    amount = Decimal(value)
                except ArithmeticError:
                    problems.append(
                        f"{other.path} (not managed by Canopy) has capacity {value!r}"
                        f"{f' in partition {label!r}' if label else ''}, not a percentage; Canopy plans "
                        f"the children of {parent} in percent, so change it there."
                    )
                    continue
                if amount:
                    taken[label] += amount
                    fixed[label].append(f"{other.path} {percent(amount)}%")
        for kid in kids:
            for share in kid.shares:
                taken[share.label] += share.capacity
                if share.label and share.label not in parent_labels:
                    problems.append(
                        f"{kid.path} has a share of partition {share.label!r}, which its parent does not have."
                    )
        remainder: list[tuple[str, Decimal, Decimal]] = []
        for label in [DEFAULT_PARTITION, *parent_labels]:
            left = HUNDRED - taken[label]
            name = "the default partition" if not label else f"partition {label!r}"
            if left < 0:
                hand_made = (
                    f" (of which not managed by Canopy: {', '.join(fixed[label])})" if fixed[label] else ""
                )
                problems.append(
                    f"The children of {parent} take {percent(taken[label])}% of {name}{hand_made}; at most 100."
                )
            remainder.append((label, max(left, Decimal(0)), HUNDRED))
        leaf = f"{parent}.{settings.remainder_queue}"
        params = _partition_params(remainder)
        if owner is not None:
            # Like the tenant's own queue: none rather than inherited, and a partition its parent
            # lost is taken away here too (YARN refuses a child's label its parent does not have).
            params.setdefault("accessible-node-labels", NO_LABELS)
            params.update(
                {
                    "state": "STOPPED" if owner.suspended else "RUNNING",
                    "acl_administer_queue": queue_acl(owner.admin_users, owner.admin_groups),
                    "acl_submit_applications": queue_acl(owner.submit_users, owner.submit_groups),
                    "user-limit-factor": settings.user_limit_factor,
                    "minimum-user-limit-percent": settings.minimum_user_limit_percent,
                    MANAGED_KEY: "true",
                }
            )
        queues[leaf] = _Queue(leaf, params)

    problems.extend(queue_rule_problems({q.path: q.params for q in queues.values()}))
    if problems:
        raise RuleViolation(problems)
    objects = [_queue_object(q.path, q.params) for q in sorted(queues.values(), key=lambda q: q.path)]
    if directories_of is not None:
        wanted = set(directories_of)
        tenants = [t for t in tenants if t.tenant_id in wanted]
    objects.extend(directory_objects(tenants, settings, hdfs_root=hdfs_root))
    return objects


def queue_rule_problems(queues: Mapping[str, Mapping[str, str]]) -> list[str]:
    """The Capacity Scheduler's rules on one set of queue params: capacities between 0 and 100 in
    percent (one capacity mode among siblings: Canopy writes percentages only), maximum not below
    capacity in each partition, no dots in a name (the path is split on them)."""
    problems = []
    for path, params in queues.items():
        for key, value in params.items():
            if not key.endswith("capacity"):
                continue
            try:
                amount = Decimal(value)
            except ArithmeticError:
                problems.append(
                    f"{path}: {key}={value!r} is not a percentage (weights and absolute units are not mixed in)."
                )
                continue
            if not 0 <= amount <= 100:
                problems.append(f"{path}: {key}={value} is outside 0..100.")
        for prefix in ["", *(f"accessible-node-labels.{label}." for label in _labels(params))]:
            capacity, maximum = params.get(f"{prefix}capacity"), params.get(f"{prefix}maximum-capacity")
            if capacity is not None and maximum is not None and Decimal(maximum) < Decimal(capacity):
                problems.append(
                    f"{path}: {prefix}maximum-capacity {maximum} is below {prefix}capacity {capacity}."
                )
    return problems


def _labels(params: Mapping[str, str]) -> list[str]:
    return sorted(
        {
            key.split(".")[1]
            for key in params
            if key.startswith("accessible-node-labels.") and key.count(".") == 2
        }
    )


def acl_spec(tenant: YarnTenant) -> list[str]:
    """HDFS ACL entries: the tenant's group and members read-write, viewers read, inherited by new
    files through the `default:` entries. A name HDFS would read as syntax (',' separates entries,
    ':' fields) is left out, as in `queue_acl`."""
    writers = {name for name in {*tenant.submit_users, *tenant.admin_users} if is_cluster_name(name)}
    readers = {name for name in tenant.read_users if is_cluster_name(name)} - writers
    groups = {name for name in {*tenant.submit_groups, *tenant.admin_groups} if is_cluster_name(name)}
    entries = [f"group:{tenant.group}:rwx"]
    entries += [f"user:{user}:rwx" for user in sorted(writers)]
    entries += [f"group:{group}:rwx" for group in sorted(groups)]
    entries += [f"user:{user}:r-x" for user in sorted(readers)]
    entries = sorted(set(entries))
    return sorted(entries + [f"default:{entry}" for entry in entries])


def directory_objects(tenants: Iterable[YarnTenant], settings: YarnSettings, *, hdfs_root: str) -> list[dict]:
    objects = []
    for tenant in tenants:
        for directory in tenant.directories:
            path = (
                directory.path
                if directory.path.startswith("/")
                else f"{hdfs_root.rstrip('/')}/{directory.path}"
            )
            objects.append(
                {
                    "apiVersion": DIRECTORY_API,
                    "kind": DIRECTORY_KIND,
                    "metadata": {"name": path},
                    "spec": {
                        "owner": settings.directory_owner,
                        "group": tenant.group,
                        "permission": settings.directory_permission,
                        "acl": acl_spec(tenant),
                        "namespaceQuota": directory.file_quota if directory.file_quota is not None else -1,
                        "spaceQuota": directory.space_quota_bytes
                        if directory.space_quota_bytes is not None
                        else -1,
                    },
                }
            )
    return sorted(objects, key=lambda o: o["metadata"]["name"])
