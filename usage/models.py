"""Usage read back from the clusters (issue 7): raw samples and their hourly and daily averages, the
workloads and the Kueue figures per pool each collection pass sees, and how collection goes on each
cluster. Written only by `usage.services` (the collectors, the rollups and the demo generator; never
by people); read through `usage.selectors`, which apply `tenants.permissions.restrict`.

The rows used to be the tenants' and provisioning's: each model keeps its table (`db_table`), so the
move (migrations `tenants.0012`, `provisioning.0007`, `usage.0001`) changed no data.
"""

from django.db import models

from tenants.models import Cluster, ResourcePool, RestrictedQuerySet, Tenant

USAGE_METRICS = (
    "gpu_used",
    "gpu_allocated",
    "cpu_used_millicores",
    "cpu_allocated_millicores",
    "memory_used_bytes",
    "memory_allocated_bytes",
    "am_cpu_used_millicores",
    "am_cpu_limit_millicores",
    "am_memory_used_bytes",
    "am_memory_limit_bytes",
    "workloads_running",
    "workloads_pending",
    "hdfs_space_used_bytes",
    "hdfs_space_quota_bytes",
    "hdfs_files_used",
    "hdfs_files_quota",
    "gpu_borrowed",
    "cpu_borrowed_millicores",
    "memory_borrowed_bytes",
    "gpu_pending",
    "cpu_pending_millicores",
    "memory_pending_bytes",
)


class UsageFigures(models.Model):
    """One tenant's figures on one cluster partition (a YARN node label, "" for the default and for
    Kubernetes), for its whole subtree: a parent's figures include its descendants'. Empty: not
    measured there (a Kubernetes cluster has no HDFS). Doubles, exact for integers below 2**53
    (8 PiB in bytes), so averages in the rollups are exact to the sample."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="+")
    partition = models.CharField(max_length=255, blank=True, default="")
    time = models.DateTimeField()

    gpu_used = models.FloatField(null=True, blank=True)
    gpu_allocated = models.FloatField(null=True, blank=True)
    cpu_used_millicores = models.FloatField(
        null=True, blank=True, help_text="Kubernetes CPU requests or YARN vCores x 1000."
    )
    cpu_allocated_millicores = models.FloatField(null=True, blank=True)
    memory_used_bytes = models.FloatField(null=True, blank=True)
    memory_allocated_bytes = models.FloatField(null=True, blank=True)
    am_cpu_used_millicores = models.FloatField(null=True, blank=True)
    am_cpu_limit_millicores = models.FloatField(null=True, blank=True)
    am_memory_used_bytes = models.FloatField(null=True, blank=True)
    am_memory_limit_bytes = models.FloatField(null=True, blank=True)
    workloads_running = models.FloatField(null=True, blank=True, help_text="Pods or YARN applications.")
    workloads_pending = models.FloatField(null=True, blank=True)
    hdfs_space_used_bytes = models.FloatField(
        null=True, blank=True, help_text="Space consumed, replicas included."
    )
    hdfs_space_quota_bytes = models.FloatField(null=True, blank=True)
    hdfs_files_used = models.FloatField(null=True, blank=True, help_text="Files and directories.")
    hdfs_files_quota = models.FloatField(null=True, blank=True)
    # Clusters whose quota engine is Kueue (issue 16): what the tenant's queues use above what they
    # are guaranteed (borrowed from idle quota of their cohorts), and what their waiting workloads
    # ask for. Empty elsewhere.
    gpu_borrowed = models.FloatField(null=True, blank=True)
    cpu_borrowed_millicores = models.FloatField(null=True, blank=True)
    memory_borrowed_bytes = models.FloatField(null=True, blank=True)
    gpu_pending = models.FloatField(
        null=True, blank=True, help_text="Asked for by workloads Kueue holds back."
    )
    cpu_pending_millicores = models.FloatField(null=True, blank=True)
    memory_pending_bytes = models.FloatField(null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.tenant_id}@{self.cluster_id}{'/' + self.partition if self.partition else ''} {self.time:%Y-%m-%d %H:%M}"


class UsageSample(UsageFigures):
    """A raw reading, one per collection pass; kept `CANOPY_USAGE_RAW_DAYS` days."""

    class Meta:
        db_table = "tenants_usagesample"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "time", "cluster", "partition"], name="usage_sample_one_per_pass"
            )
        ]
        # Pruning and rollups walk time ranges across tenants.
        indexes = [models.Index(fields=["time"], name="usage_sample_time_idx")]


class UsageRollup(UsageFigures):
    """Averages of the raw samples in an hour or a day (`time` is the bucket's start), and how many
    samples made them. Hourly rows are kept `CANOPY_USAGE_HOURLY_DAYS`, daily ones
    `CANOPY_USAGE_DAILY_DAYS`."""

    class Resolution(models.TextChoices):
        HOUR = "hour", "Hourly"
        DAY = "day", "Daily"

    resolution = models.CharField(max_length=4, choices=Resolution.choices)
    samples = models.PositiveIntegerField()

    class Meta:
        db_table = "tenants_usagerollup"
        constraints = [
            # Leading (tenant, resolution, time): a dashboard's range scan is one index range.
            models.UniqueConstraint(
                fields=["tenant", "resolution", "time", "cluster", "partition"],
                name="usage_rollup_one_per_bucket",
            )
        ]
        indexes = [models.Index(fields=["resolution", "time"], name="usage_rollup_time_idx")]


class Workload(models.Model):
    """A pod, Job, training job or YARN application seen by the last collection pass of its cluster,
    with who submitted it (the ServiceAccount it runs as, or the YARN user) and what it asks for."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="workloads")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=64, help_text="Pod, Job, PyTorchJob, ... or YARN application.")
    namespace = models.CharField(max_length=253, help_text="Namespace, or the YARN queue.")
    name = models.CharField(max_length=253)
    submitted_by = models.CharField(
        max_length=253, help_text="ServiceAccount (Kubernetes) or user (YARN) it was submitted as."
    )
    username = models.CharField(
        max_length=150, blank=True, help_text="The Canopy user behind it, when known."
    )
    state = models.CharField(max_length=16, choices=State.choices)
    gpu = models.FloatField(default=0)
    cpu_millicores = models.FloatField(default=0)
    memory_bytes = models.FloatField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField()
    # A workload Kueue holds back (issue 16): its place in its ClusterQueue's line (1: next to be
    # admitted when quota frees) and Kueue's reason.
    queue_position = models.PositiveIntegerField(
        null=True, blank=True, help_text="Place in its Kueue ClusterQueue's line; 1 is first."
    )
    waiting_reason = models.TextField(blank=True, help_text="Why Kueue holds it back, in Kueue's words.")

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        db_table = "tenants_workload"
        ordering = ["-started_at", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "kind", "namespace", "name"], name="workload_unique")
        ]
        indexes = [models.Index(fields=["tenant", "username"], name="workload_tenant_user_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


class FlavorUsage(models.Model):
    """What a tenant's subtree uses of one pool (a Kueue ResourceFlavor) on a cluster whose quota
    engine is Kueue, from its ClusterQueues' status at the last collection pass (replaced by each
    pass, like `Workload`). Per resource: `used` (admitted workloads), `reserved` (quota reserved,
    admitted or about to be), `guaranteed` (the queues' nominal quota; empty: unlimited) and
    `borrowed` (used above the guaranteed amount, lent by idle tenants of the cohorts)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="+")
    pool = models.ForeignKey(ResourcePool, on_delete=models.CASCADE, related_name="+")
    seen_at = models.DateTimeField()
    gpu_used = models.FloatField(default=0)
    gpu_reserved = models.FloatField(default=0)
    gpu_guaranteed = models.FloatField(null=True, blank=True)
    gpu_borrowed = models.FloatField(default=0)
    cpu_used_millicores = models.FloatField(default=0)
    cpu_reserved_millicores = models.FloatField(default=0)
    cpu_guaranteed_millicores = models.FloatField(null=True, blank=True)
    cpu_borrowed_millicores = models.FloatField(default=0)
    memory_used_bytes = models.FloatField(default=0)
    memory_reserved_bytes = models.FloatField(default=0)
    memory_guaranteed_bytes = models.FloatField(null=True, blank=True)
    memory_borrowed_bytes = models.FloatField(default=0)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        db_table = "tenants_flavorusage"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "cluster", "pool"], name="flavor_usage_unique")
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}@{self.cluster_id}/{self.pool_id} {self.seen_at:%Y-%m-%d %H:%M}"


class UsageCollection(models.Model):
    """Usage collection on one cluster (issue 7): how often, and how the last pass went. Written
    only by `usage.services`; platform admins see it beside the connection."""

    class State(models.TextChoices):
        NEVER = "never", "Not collected yet"
        OK = "ok", "Collected"
        PARTIAL = "partial", "Collected, some figures missing"
        FAILED = "failed", "Failed"

    cluster = models.OneToOneField(
        Cluster, on_delete=models.CASCADE, primary_key=True, related_name="usage_collection"
    )
    interval_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Seconds between passes on this cluster; empty: CANOPY_USAGE_INTERVAL_SECONDS (60).",
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.NEVER)
    message = models.TextField(blank=True, help_text="The last pass's error, or what it left out.")
    last_attempt_at = models.DateTimeField(null=True, blank=True, help_text="When the last pass was claimed.")
    last_collected_at = models.DateTimeField(null=True, blank=True, help_text="When a pass last succeeded.")
    duration_seconds = models.FloatField(null=True, blank=True)
    calls = models.PositiveIntegerField(default=0, help_text="HTTP calls the last pass made.")
    samples = models.PositiveIntegerField(default=0)
    workloads = models.PositiveIntegerField(default=0)
    details = models.JSONField(default=dict, blank=True, help_text="Cluster-wide figures (YARN metrics).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "provisioning_usagecollection"
        ordering = ["cluster__name"]

    def __str__(self) -> str:
        return f"usage of {self.cluster}: {self.state}"


class PoolPrice(models.Model):
    """What one unit of a resource costs on a pool, for the showback's cost columns (issue 19):
    a GPU-hour, a core-hour, a memory GiB-hour or an HDFS GiB-day. Optional: without prices the
    showback has no cost. All prices are in one currency (`usage.services.pool_prices_set` sets
    them together). Written only by platform admins, through that service; read by everyone signed
    in (prices are the platform's, like its pools)."""

    class Resource(models.TextChoices):
        GPU = "gpu", "GPU-hour"
        CPU = "cpu", "Core-hour"
        MEMORY = "memory", "Memory GiB-hour"
        HDFS = "hdfs", "HDFS GiB-day"

    pool = models.ForeignKey(ResourcePool, on_delete=models.CASCADE, related_name="+")
    resource = models.CharField(max_length=8, choices=Resource.choices)
    price = models.DecimalField(max_digits=14, decimal_places=4, help_text="Per unit of the resource.")
    currency = models.CharField(max_length=3, help_text="ISO 4217 code, e.g. EUR.")
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["pool__cluster__name", "pool__name", "resource"]
        constraints = [models.UniqueConstraint(fields=["pool", "resource"], name="pool_price_unique")]

    def __str__(self) -> str:
        return f"{self.pool_id} {self.resource}: {self.price} {self.currency}"
