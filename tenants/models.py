"""Canopy's domain: clusters and their resource pools, the tenant tree, what each tenant is allocated,
its storage and volumes, quota plans, who holds which role where, and the audit trail.

Rows are written only by `tenants.services`; reads go through `tenants.selectors`, which apply
`tenants.permissions.restrict` to every queryset.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, cast

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F
from django.db.models.functions import Substr
from django.utils import timezone
from treebeard.mp_tree import MP_Node, MP_NodeManager, MP_NodeQuerySet

from tenants import paths
from tenants.amounts import grant_phrase
from tenants.permissions import AnyUser, RestrictedQuerySetMixin
from tenants.roles import Role

if TYPE_CHECKING:
    from django.contrib.auth.models import User

DNS_LABEL_MAX = 63
# \Z, not $: "$" also matches before a final newline, and "dev1\n" is no DNS label (issue 15).
dns_label_validator = RegexValidator(
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z",
    "Use 1 to 63 lower-case letters, digits and '-', starting and ending with a letter or digit "
    "(a DNS-1123 label, e.g. dev1 or team-a).",
)


class RestrictedQuerySet(RestrictedQuerySetMixin, models.QuerySet):
    pass


class Cluster(models.Model):
    """A Kubernetes cluster or a Hadoop (YARN + HDFS) cluster that tenants get resources from."""

    class Kind(models.TextChoices):
        KUBERNETES = "kubernetes", "Kubernetes"
        YARN = "yarn", "Hadoop YARN / HDFS"

    name = models.CharField(max_length=DNS_LABEL_MAX, unique=True, validators=[dns_label_validator])
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ResourcePool(models.Model):
    """Nodes of one cluster picked by a node label; tenants are allocated shares of its capacity.

    Kubernetes pools count GPUs, CPU and memory; YARN pools (a node-label partition) count vCores
    (stored as whole cores in millicores) and memory, and tenants get a capacity percentage of them.
    """

    DEFAULT_NAME = "default"

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="pools")
    name = models.CharField(max_length=DNS_LABEL_MAX, validators=[dns_label_validator])
    node_selector = models.CharField(
        max_length=253,
        blank=True,
        help_text="Kubernetes: a node label selector such as 'gpu=a100'. YARN: the node label (partition). "
        "Empty for the default pool.",
    )
    description = models.TextField(blank=True)
    gpu_capacity = models.PositiveIntegerField(default=0)
    cpu_capacity_millicores = models.PositiveBigIntegerField(default=0)
    memory_capacity_bytes = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    # Set by `selectors.pool_list`: what level-1 tenants hold of the pool (None: none holds a limit).
    allocated_gpu: int | None
    allocated_cpu: int | None
    allocated_memory: int | None
    allocated_capacity: Decimal | None

    class Meta:
        ordering = ["cluster__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="pool_name_unique_in_cluster")
        ]

    def __str__(self) -> str:
        return f"{self.cluster.name}/{self.name}"

    @property
    def is_yarn(self) -> bool:
        return self.cluster.kind == Cluster.Kind.YARN


# The plugin cannot find Tenant.plan's reverse manager: Tenant's base class (treebeard) has no types.
class QuotaPlan(models.Model):  # type: ignore[django-manager-missing]
    """A named template of allocations and storage. Tenants get a copy, never a live link."""

    name = models.CharField(max_length=DNS_LABEL_MAX, unique=True, validators=[dns_label_validator])
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def parent_tree_path(prefix: str = "") -> Substr:
    """The parent's tree path as SQL, from a tenant's own path and depth ("" for level 1). Indexed,
    so "the children of these tenants" is `parent_tree_path() IN (their paths)`: one index lookup
    each, whatever the tree's size. `prefix` reaches the tenant from another model ("tenant__")."""
    return Substr(f"{prefix}path", 1, (F(f"{prefix}depth") - 1) * MP_Node.steplen)


class TenantQuerySet(RestrictedQuerySetMixin, MP_NodeQuerySet):
    pass


class TenantManager(MP_NodeManager):
    def get_queryset(self) -> TenantQuerySet:
        return TenantQuerySet(self.model).order_by("path")

    def restrict(self, user: AnyUser | None, action: str) -> models.QuerySet:
        return self.get_queryset().restrict(user, action)

    def paths_with_ancestors(self, tenant_ids: set[int]) -> dict[int, str]:
        """Tree paths of these tenants and of all their ancestors, by id, in two queries. Not
        restricted: for code that sums figures up the tree, never to show a list to someone."""
        paths = dict(self.filter(pk__in=tenant_ids).values_list("pk", "path"))
        prefixes = {
            prefix for path in paths.values() for prefix in self.model.path_prefixes(path, include_self=False)
        }
        paths.update(self.filter(path__in=prefixes).values_list("pk", "path"))
        return paths


class Tenant(MP_Node):
    """A node of the tenant tree. `path` (from treebeard) orders and nests; `name_path` is the
    human path ("department1/dev1") that names the tenant everywhere else."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        DELETING = "deleting", "Deleting"

    DEFAULT_NAME = "default"
    NAME_PATH_MAX = 1024

    # treebeard's path: 4 characters a level; 255 allows 63 levels, more than the depth setting allows.
    name = models.CharField(max_length=DNS_LABEL_MAX, validators=[dns_label_validator])
    name_path = models.CharField(max_length=NAME_PATH_MAX, unique=True, editable=False)
    display_name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    # Not `is_leaf`: treebeard already has is_leaf() meaning "has no children now".
    leaf = models.BooleanField(
        default=False, help_text="A leaf tenant uses resources and never has sub-tenants."
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    plan = models.ForeignKey(
        QuotaPlan,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tenants",
        help_text="The plan this tenant's allocations were last copied from.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        indexes = [
            # Subtree reads are `path LIKE 'prefix%'`; PostgreSQL needs pattern ops for that under
            # a non-C collation. Other databases ignore the opclass.
            models.Index(fields=["path"], name="tenant_path_prefix_idx", opclasses=["varchar_pattern_ops"]),
            models.Index(fields=["depth"], name="tenant_depth_idx"),
            models.Index(parent_tree_path(), name="tenant_parent_path_idx"),
        ]

    def __str__(self) -> str:
        return self.name_path

    @property
    def level(self) -> int:
        return self.depth

    @property
    def is_default(self) -> bool:
        """The level-1 `default` tenant, which always exists: never moved or deleted."""
        return self.depth == 1 and self.name == self.DEFAULT_NAME

    @property
    def parent_name_path(self) -> str | None:
        return self.name_path.rpartition("/")[0] or None

    @property
    def parent_tree_path(self) -> str | None:
        return self.path[: -self.steplen] or None

    @classmethod
    def path_prefixes(cls, path: str, *, include_self: bool = True) -> list[str]:
        """The tree paths of a node's ancestors, level 1 first, then its own unless `include_self`
        is False: every prefix of `path` in steps of treebeard's steplen."""
        return [path[:end] for end in range(cls.steplen, len(path) + (1 if include_self else 0), cls.steplen)]


class AllocationAmounts(models.Model):
    """What a tenant (or a plan) gets in one pool. None means unlimited: no cap and no reservation."""

    gpu = models.PositiveIntegerField(null=True, blank=True)
    cpu_millicores = models.PositiveBigIntegerField(null=True, blank=True)
    memory_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    # Kubernetes pools: the most the tenant may use by borrowing what siblings leave idle, like
    # YARN's maximum capacity. None: no burst, the guaranteed amount is also the maximum.
    gpu_burst = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most GPUs the tenant may use while others leave theirs idle."
    )
    cpu_millicores_burst = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Most CPU (millicores) the tenant may use by borrowing."
    )
    memory_bytes_burst = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Most memory (bytes) the tenant may use by borrowing."
    )
    capacity_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="YARN pools: guaranteed share of the parent queue, in percent.",
    )
    max_capacity_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="YARN pools: the most of the parent queue this queue may use, in percent.",
    )

    class Meta:
        abstract = True


class Allocation(AllocationAmounts):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="allocations")
    pool = models.ForeignKey(ResourcePool, on_delete=models.PROTECT, related_name="allocations")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["tenant__path", "pool__cluster__name", "pool__name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "pool"], name="allocation_one_per_pool")]

    def __str__(self) -> str:
        return f"{self.tenant} in {self.pool}"


class AllocationGrant(models.Model):
    """A time-bound change of an allocation (issue 19): the amounts it gave until `ends_at`, and the
    amounts to go back to then (`back_to`; both every `AllocationAmounts` field, as an audit row
    keeps them: decimals as text). Beat ends it through the allocation service
    (`tenants.services.allocation_grants_end_due`): the same rules, the same audit, the clusters
    pushed. One grant of an allocation is open (active or waiting) at a time; a later change of the
    allocation supersedes it, so nobody's manual change is reverted silently."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        WAITING = "waiting", "Waiting for running work"
        ENDED = "ended", "Ended"
        REFUSED = "refused", "End refused"
        SUPERSEDED = "superseded", "Superseded"
        CANCELLED = "cancelled", "Kept (cancelled)"

    OPEN_STATES = (State.ACTIVE, State.WAITING)

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="allocation_grants")
    allocation = models.ForeignKey(Allocation, on_delete=models.CASCADE, related_name="grants")
    granted = models.JSONField(help_text="The amounts given until the end time.")
    back_to = models.JSONField(help_text="The amounts the allocation goes back to at the end time.")
    ends_at = models.DateTimeField(db_index=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    status = models.TextField(blank=True, help_text="Why it waits, was refused or superseded.")
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    granted_by_name = models.CharField(max_length=150)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["allocation"],
                condition=models.Q(state__in=["active", "waiting"]),
                name="allocation_grant_one_open",
            )
        ]
        indexes = [models.Index(fields=["state", "ends_at"], name="allocation_grant_due_idx")]

    def __str__(self) -> str:
        return f"{self.allocation} until {self.ends_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @classmethod
    def shown_of(cls, allocation: Allocation, newest_first: list[AllocationGrant]) -> AllocationGrant | None:
        """Of an allocation's open and refused grants, newest first, the one its readers are shown:
        the open one, or the last one whose end was refused, until the allocation changes again."""
        for grant in newest_first[:1]:
            if grant.is_open or (
                grant.finished_at is not None and grant.finished_at >= allocation.updated_at
            ):
                return grant
        return None

    @property
    def summary(self) -> str:
        """ "6 GPUs until 2026-12-20 18:00, then back to 4 GPUs" (in the console's time zone)."""
        return grant_phrase(self.granted, self.back_to, f"{timezone.localtime(self.ends_at):%Y-%m-%d %H:%M}")


class QuotaPlanAllocation(AllocationAmounts):
    plan = models.ForeignKey(QuotaPlan, on_delete=models.CASCADE, related_name="allocations")
    pool = models.ForeignKey(ResourcePool, on_delete=models.CASCADE, related_name="plan_allocations")

    class Meta:
        ordering = ["pool__cluster__name", "pool__name"]
        constraints = [models.UniqueConstraint(fields=["plan", "pool"], name="plan_allocation_one_per_pool")]

    def __str__(self) -> str:
        return f"{self.plan} in {self.pool}"


class StorageQuota(models.Model):
    """Space and file-count quotas of an HDFS directory. None means unlimited."""

    space_quota_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    file_quota = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="HDFS namespace quota: files and directories."
    )

    class Meta:
        abstract = True


class StorageDirectory(StorageQuota):
    """An HDFS directory of a tenant, under the configured root."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="storage")
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="storage")
    path = models.CharField(max_length=1024)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["cluster__name", "path"]
        constraints = [models.UniqueConstraint(fields=["cluster", "path"], name="storage_path_unique")]
        verbose_name_plural = "storage directories"

    def __str__(self) -> str:
        return f"{self.cluster.name}:{self.path}"


class TenantService(models.Model):
    """A service a tenant uses on a Hadoop cluster (MRS's "tenant service association"): today a Hive
    database, whose warehouse directory the push creates with the tenant's group and ACLs
    (`tenants.services.tenant_services`, docs/provisioning-hadoop.md). One tenant owns each name;
    its ACLs name only that tenant's group and people."""

    class Kind(models.TextChoices):
        HIVE_DATABASE = "hive_database", "Hive database"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="services")
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="tenant_services")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    name = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["cluster__name", "kind", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "kind", "name"], name="tenant_service_unique_in_cluster"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name} on {self.cluster.name}"


class QuotaPlanStorage(StorageQuota):
    plan = models.ForeignKey(QuotaPlan, on_delete=models.CASCADE, related_name="storage")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="plan_storage")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["plan", "cluster"], name="plan_storage_one_per_cluster")
        ]

    def __str__(self) -> str:
        return f"{self.plan} on {self.cluster}"


class NfsShare(models.Model):
    """An NFS export a platform admin registered on a Kubernetes cluster. Volumes are directories
    below its base path; a share is usable by the tenants it is granted to and their subtrees
    (`NfsShareGrant`). Who may point a volume at which server and path is the platform's decision:
    tenant admins only name a share granted to them and a sub-path."""

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="nfs_shares")
    name = models.CharField(max_length=DNS_LABEL_MAX, validators=[dns_label_validator])
    server = models.CharField(max_length=253, help_text="NFS server host name or IP address.")
    base_path = models.CharField(
        max_length=1024, help_text="The exported directory; volumes are sub-directories of it."
    )
    description = models.TextField(blank=True)
    tenants = models.ManyToManyField(Tenant, through="NfsShareGrant", related_name="nfs_shares")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["cluster__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="nfs_share_name_unique_in_cluster")
        ]

    def __str__(self) -> str:
        return self.name

    def directory(self, sub_path: str) -> str:
        """The server-side directory of a volume at `sub_path` ("" is the base path itself)."""
        return paths.below(self.base_path, sub_path)


class NfsShareGrant(models.Model):
    """A share granted to a tenant: its admins above may carve volumes out of it for the tenant and
    for any tenant below it."""

    share = models.ForeignKey(NfsShare, on_delete=models.CASCADE, related_name="grants")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="nfs_share_grants")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["share__name", "tenant__path"]
        constraints = [models.UniqueConstraint(fields=["share", "tenant"], name="nfs_share_grant_once")]

    def __str__(self) -> str:
        return f"{self.share} granted to {self.tenant}"


class Volume(models.Model):
    """A directory of an NFS share offered to tenants as a PersistentVolume + claim in each of them.

    Private: exactly one tenant. Shared: several tenants mount the same directory (the source
    document's department1-public-dev1 / department1-public-dev2). The server and the directory come
    from the share: `share.server` and `share.base_path/sub_path`.
    """

    class Scope(models.TextChoices):
        PRIVATE = "private", "Private to one tenant"
        SHARED = "shared", "Shared by several tenants"

    class AccessMode(models.TextChoices):
        READ_WRITE_MANY = "ReadWriteMany", "ReadWriteMany"
        READ_ONLY_MANY = "ReadOnlyMany", "ReadOnlyMany"
        READ_WRITE_ONCE = "ReadWriteOnce", "ReadWriteOnce"

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="volumes")
    name = models.CharField(max_length=DNS_LABEL_MAX, validators=[dns_label_validator])
    description = models.TextField(blank=True)
    share = models.ForeignKey(NfsShare, on_delete=models.PROTECT, related_name="volumes")
    sub_path = models.CharField(
        max_length=1024,
        blank=True,
        help_text="The directory below the share's base path, e.g. dev1; empty: the base path itself.",
    )
    capacity_bytes = models.PositiveBigIntegerField()
    access_mode = models.CharField(
        max_length=16, choices=AccessMode.choices, default=AccessMode.READ_WRITE_MANY
    )
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.PRIVATE)
    tenants = models.ManyToManyField(Tenant, through="VolumeAttachment", related_name="volumes")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    # Set by `selectors.volume_list`: all its attachments counted, and those the reader may see.
    attachment_count: int
    visible_attachments: list[VolumeAttachment]

    class Meta:
        ordering = ["cluster__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="volume_name_unique_in_cluster")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def server(self) -> str:
        return self.share.server

    @property
    def export_path(self) -> str:
        return self.share.directory(self.sub_path)


class VolumeAttachment(models.Model):
    """One tenant's claim on a volume; `claim_name` is the PVC name in the tenant's namespace."""

    volume = models.ForeignKey(Volume, on_delete=models.CASCADE, related_name="attachments")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="volume_attachments")
    claim_name = models.CharField(max_length=DNS_LABEL_MAX, validators=[dns_label_validator])

    class Meta:
        ordering = ["tenant__path"]
        constraints = [
            models.UniqueConstraint(fields=["volume", "tenant"], name="attachment_once_per_tenant"),
            models.UniqueConstraint(fields=["tenant", "claim_name"], name="claim_name_unique_in_tenant"),
        ]

    def __str__(self) -> str:
        return f"{self.claim_name} ({self.tenant})"


class Membership(models.Model):
    """A user's or a group's role on a tenant. Admins manage the tenant's whole subtree; a group's role
    holds for every member of the group (groups are mirrored from LDAP or OpenID Connect at sign-in)."""

    Role = Role  # their order and reach: tenants.roles

    # The subject: exactly one of user and group.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="memberships"
    )
    group = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["tenant__path", "group__name", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_one_role_per_tenant"),
            models.UniqueConstraint(fields=["group", "tenant"], name="membership_one_group_role_per_tenant"),
            models.CheckConstraint(
                condition=models.Q(user__isnull=False, group__isnull=True)
                | models.Q(user__isnull=True, group__isnull=False),
                name="membership_user_or_group",
            ),
        ]

    def __str__(self) -> str:
        subject = f"group {self.group.name}" if self.group is not None else str(self.user)
        return f"{subject} is {self.role} of {self.tenant}"

    @property
    def subject_name(self) -> str:
        # Exactly one of user and group (the check constraint above).
        return self.group.name if self.group is not None else cast("User", self.user).get_username()

    @property
    def subject_kind(self) -> str:
        return "group" if self.group_id else "user"


class AuditAction(models.TextChoices):
    """Every action an audit row records: the code rows keep (and the API and filters use), and how
    people read it. `tenants.audit.audit` refuses a code that is not here, so each has its label."""

    TENANT_CREATED = "TENANT_CREATED", "Tenant created"
    TENANT_UPDATED = "TENANT_UPDATED", "Tenant changed"
    TENANT_MOVED = "TENANT_MOVED", "Tenant moved"
    TENANT_SUSPENDED = "TENANT_SUSPENDED", "Tenant suspended"
    TENANT_RESUMED = "TENANT_RESUMED", "Tenant resumed"
    TENANT_DELETED = "TENANT_DELETED", "Tenant deleted"
    TENANT_PLAN_APPLIED = "TENANT_PLAN_APPLIED", "Plan applied"
    ALLOCATION_CREATED = "ALLOCATION_CREATED", "Allocation created"
    ALLOCATION_UPDATED = "ALLOCATION_UPDATED", "Allocation changed"
    ALLOCATION_DELETED = "ALLOCATION_DELETED", "Allocation removed"
    ALLOCATION_GRANT_ENDED = "ALLOCATION_GRANT_ENDED", "Time-bound grant ended"
    ALLOCATION_GRANT_WAITING = "ALLOCATION_GRANT_WAITING", "Time-bound grant waits for running work"
    ALLOCATION_GRANT_REFUSED = "ALLOCATION_GRANT_REFUSED", "Time-bound grant's end refused"
    ALLOCATION_GRANT_SUPERSEDED = "ALLOCATION_GRANT_SUPERSEDED", "Time-bound grant superseded"
    ALLOCATION_GRANT_CANCELLED = "ALLOCATION_GRANT_CANCELLED", "Time-bound grant kept"
    STORAGE_CREATED = "STORAGE_CREATED", "HDFS directory created"
    STORAGE_UPDATED = "STORAGE_UPDATED", "HDFS directory changed"
    STORAGE_DELETED = "STORAGE_DELETED", "HDFS directory removed"
    TENANT_SERVICE_CREATED = "TENANT_SERVICE_CREATED", "Service linked"
    TENANT_SERVICE_DELETED = "TENANT_SERVICE_DELETED", "Service unlinked"
    VOLUME_CREATED = "VOLUME_CREATED", "Volume created"
    VOLUME_UPDATED = "VOLUME_UPDATED", "Volume changed"
    VOLUME_DELETED = "VOLUME_DELETED", "Volume deleted"
    NFS_SHARE_CREATED = "NFS_SHARE_CREATED", "NFS share registered"
    NFS_SHARE_UPDATED = "NFS_SHARE_UPDATED", "NFS share changed"
    NFS_SHARE_DELETED = "NFS_SHARE_DELETED", "NFS share removed"
    NFS_SHARE_GRANTED = "NFS_SHARE_GRANTED", "NFS share granted"
    NFS_SHARE_REVOKED = "NFS_SHARE_REVOKED", "NFS share grant revoked"
    MEMBERSHIP_GRANTED = "MEMBERSHIP_GRANTED", "Membership granted"
    MEMBERSHIP_CHANGED = "MEMBERSHIP_CHANGED", "Role changed"
    MEMBERSHIP_REVOKED = "MEMBERSHIP_REVOKED", "Membership revoked"
    GROUPS_MIRRORED = "GROUPS_MIRRORED", "Groups updated at sign-in"
    USER_CREATED = "USER_CREATED", "User created"
    USER_UPDATED = "USER_UPDATED", "User changed"
    CLUSTER_CREATED = "CLUSTER_CREATED", "Cluster created"
    CLUSTER_UPDATED = "CLUSTER_UPDATED", "Cluster changed"
    CLUSTER_DELETED = "CLUSTER_DELETED", "Cluster deleted"
    POOL_CREATED = "POOL_CREATED", "Pool created"
    POOL_UPDATED = "POOL_UPDATED", "Pool changed"
    POOL_DELETED = "POOL_DELETED", "Pool deleted"
    PLAN_CREATED = "PLAN_CREATED", "Plan created"
    PLAN_UPDATED = "PLAN_UPDATED", "Plan changed"
    PLAN_DELETED = "PLAN_DELETED", "Plan deleted"
    CONNECTION_CREATED = "CONNECTION_CREATED", "Cluster connected"
    CONNECTION_UPDATED = "CONNECTION_UPDATED", "Cluster connection changed"
    CONNECTION_DELETED = "CONNECTION_DELETED", "Cluster disconnected"
    PROVISIONING_REQUESTED = "PROVISIONING_REQUESTED", "Push requested"
    KUBECONFIG_ISSUED = "KUBECONFIG_ISSUED", "Kubeconfig downloaded"
    API_TOKEN_ISSUED = "API_TOKEN_ISSUED", "API token issued"
    CREDENTIALS_REVOKED = "CREDENTIALS_REVOKED", "Tokens and sessions revoked"
    SIGN_IN_LOCKED_OUT = "SIGN_IN_LOCKED_OUT", "Sign-in locked out"
    USAGE_INTERVAL_UPDATED = "USAGE_INTERVAL_UPDATED", "Usage collection interval changed"
    POOL_PRICES_UPDATED = "POOL_PRICES_UPDATED", "Showback prices changed"
    QUOTA_REQUEST_CREATED = "QUOTA_REQUEST_CREATED", "Quota request made"
    QUOTA_REQUEST_WITHDRAWN = "QUOTA_REQUEST_WITHDRAWN", "Quota request withdrawn"
    QUOTA_REQUEST_APPROVED = "QUOTA_REQUEST_APPROVED", "Quota request approved"
    QUOTA_REQUEST_CHANGED = "QUOTA_REQUEST_CHANGED", "Quota request approved with changes"
    QUOTA_REQUEST_REFUSED = "QUOTA_REQUEST_REFUSED", "Quota request refused"

    @classmethod
    def label_of(cls, code: str) -> str:
        """The label of a code (a code no longer written reads as itself)."""
        return cls(code).label if code in cls.values else code


class AuditEvent(models.Model):
    """Who did what, when, with the state before and after. Written by every service.

    `tenant` scopes the event for tenant admins (a deleted tenant's removal is scoped to its parent);
    the *_repr and tenant_path snapshots keep the record readable after the rows are gone.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, help_text="The acting user's name, or 'system'.")
    action = models.CharField(max_length=64, db_index=True)
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    tenant_path = models.CharField(max_length=Tenant.NAME_PATH_MAX, blank=True)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=300)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="audit_tenant_time_idx")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.target_repr}"

    @property
    def label(self) -> str:
        """How people read the action: "Membership granted" for MEMBERSHIP_GRANTED."""
        return AuditAction.label_of(self.action)
