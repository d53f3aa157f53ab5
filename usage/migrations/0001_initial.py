# Usage's own app (issue 17). Its models were the tenants' (UsageSample, UsageRollup, Workload,
# FlavorUsage: tenants.0004, tenants.0011) and provisioning's (UsageCollection: provisioning.0005);
# tenants.0012 and provisioning.0007 dropped them from their state. Here they are created in the
# state only, on the tables they already have (db_table), so no row moves. A database made from
# scratch gets the tables from those older migrations, as before.
#
# Their content types follow them (as Django does for a renamed model), so the permissions and
# the admin's history that point at them keep pointing at the same models.

import django.db.models.deletion
from django.db import IntegrityError, migrations, models, router, transaction

MOVED = {
    "tenants": ("usagesample", "usagerollup", "workload", "flavorusage"),
    "provisioning": ("usagecollection",),
}


def _content_types_move(apps, schema_editor, moves):
    content_type = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not router.allow_migrate_model(db, content_type):
        return
    for old_label, new_label, model in moves:
        found = content_type.objects.db_manager(db).filter(app_label=old_label, model=model).first()
        if found is None:
            continue  # a new database: post_migrate creates usage's content types
        found.app_label = new_label
        try:
            with transaction.atomic(using=db):
                found.save(using=db, update_fields=["app_label"])
        except IntegrityError:
            # The new one exists already (content types made by hand, or a half-run move): the
            # old one stays stale, for `remove_stale_contenttypes` to ask about, as Django does.
            pass
    content_type.objects.clear_cache()


def content_types_to_usage(apps, schema_editor):
    moves = [(label, "usage", model) for label, models_ in MOVED.items() for model in models_]
    _content_types_move(apps, schema_editor, moves)


def content_types_back(apps, schema_editor):
    moves = [("usage", label, model) for label, models_ in MOVED.items() for model in models_]
    _content_types_move(apps, schema_editor, moves)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("tenants", "0012_usage_moves_to_its_app"),
        ("provisioning", "0007_usage_collection_moves_to_usage"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="UsageCollection",
                    fields=[
                        (
                            "cluster",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                primary_key=True,
                                related_name="usage_collection",
                                serialize=False,
                                to="tenants.cluster",
                            ),
                        ),
                        (
                            "interval_seconds",
                            models.PositiveIntegerField(
                                blank=True,
                                help_text="Seconds between passes on this cluster; empty: CANOPY_USAGE_INTERVAL_SECONDS (60).",
                                null=True,
                            ),
                        ),
                        (
                            "state",
                            models.CharField(
                                choices=[
                                    ("never", "Not collected yet"),
                                    ("ok", "Collected"),
                                    ("partial", "Collected, some figures missing"),
                                    ("failed", "Failed"),
                                ],
                                default="never",
                                max_length=16,
                            ),
                        ),
                        (
                            "message",
                            models.TextField(
                                blank=True, help_text="The last pass's error, or what it left out."
                            ),
                        ),
                        (
                            "last_attempt_at",
                            models.DateTimeField(
                                blank=True, help_text="When the last pass was claimed.", null=True
                            ),
                        ),
                        (
                            "last_collected_at",
                            models.DateTimeField(
                                blank=True, help_text="When a pass last succeeded.", null=True
                            ),
                        ),
                        ("duration_seconds", models.FloatField(blank=True, null=True)),
                        (
                            "calls",
                            models.PositiveIntegerField(
                                default=0, help_text="HTTP calls the last pass made."
                            ),
                        ),
                        ("samples", models.PositiveIntegerField(default=0)),
                        ("workloads", models.PositiveIntegerField(default=0)),
                        (
                            "details",
                            models.JSONField(
                                blank=True, default=dict, help_text="Cluster-wide figures (YARN metrics)."
                            ),
                        ),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        "db_table": "provisioning_usagecollection",
                        "ordering": ["cluster__name"],
                    },
                ),
                migrations.CreateModel(
                    name="FlavorUsage",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("seen_at", models.DateTimeField()),
                        ("gpu_used", models.FloatField(default=0)),
                        ("gpu_reserved", models.FloatField(default=0)),
                        ("gpu_guaranteed", models.FloatField(blank=True, null=True)),
                        ("gpu_borrowed", models.FloatField(default=0)),
                        ("cpu_used_millicores", models.FloatField(default=0)),
                        ("cpu_reserved_millicores", models.FloatField(default=0)),
                        ("cpu_guaranteed_millicores", models.FloatField(blank=True, null=True)),
                        ("cpu_borrowed_millicores", models.FloatField(default=0)),
                        ("memory_used_bytes", models.FloatField(default=0)),
                        ("memory_reserved_bytes", models.FloatField(default=0)),
                        ("memory_guaranteed_bytes", models.FloatField(blank=True, null=True)),
                        ("memory_borrowed_bytes", models.FloatField(default=0)),
                        (
                            "cluster",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="tenants.cluster",
                            ),
                        ),
                        (
                            "pool",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="tenants.resourcepool",
                            ),
                        ),
                        (
                            "tenant",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="tenants.tenant",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "tenants_flavorusage",
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("tenant", "cluster", "pool"), name="flavor_usage_unique"
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="UsageRollup",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("partition", models.CharField(blank=True, default="", max_length=255)),
                        ("time", models.DateTimeField()),
                        ("gpu_used", models.FloatField(blank=True, null=True)),
                        ("gpu_allocated", models.FloatField(blank=True, null=True)),
                        (
                            "cpu_used_millicores",
                            models.FloatField(
                                blank=True,
                                help_text="Kubernetes CPU requests or YARN vCores x 1000.",
                                null=True,
                            ),
                        ),
                        ("cpu_allocated_millicores", models.FloatField(blank=True, null=True)),
                        ("memory_used_bytes", models.FloatField(blank=True, null=True)),
                        ("memory_allocated_bytes", models.FloatField(blank=True, null=True)),
                        ("am_cpu_used_millicores", models.FloatField(blank=True, null=True)),
                        ("am_cpu_limit_millicores", models.FloatField(blank=True, null=True)),
                        ("am_memory_used_bytes", models.FloatField(blank=True, null=True)),
                        ("am_memory_limit_bytes", models.FloatField(blank=True, null=True)),
                        (
                            "workloads_running",
                            models.FloatField(blank=True, help_text="Pods or YARN applications.", null=True),
                        ),
                        ("workloads_pending", models.FloatField(blank=True, null=True)),
                        (
                            "hdfs_space_used_bytes",
                            models.FloatField(
                                blank=True, help_text="Space consumed, replicas included.", null=True
                            ),
                        ),
                        ("hdfs_space_quota_bytes", models.FloatField(blank=True, null=True)),
                        (
                            "hdfs_files_used",
                            models.FloatField(blank=True, help_text="Files and directories.", null=True),
                        ),
                        ("hdfs_files_quota", models.FloatField(blank=True, null=True)),
                        ("gpu_borrowed", models.FloatField(blank=True, null=True)),
                        ("cpu_borrowed_millicores", models.FloatField(blank=True, null=True)),
                        ("memory_borrowed_bytes", models.FloatField(blank=True, null=True)),
                        (
                            "gpu_pending",
                            models.FloatField(
                                blank=True, help_text="Asked for by workloads Kueue holds back.", null=True
                            ),
                        ),
                        ("cpu_pending_millicores", models.FloatField(blank=True, null=True)),
                        ("memory_pending_bytes", models.FloatField(blank=True, null=True)),
                        (
                            "resolution",
                            models.CharField(choices=[("hour", "Hourly"), ("day", "Daily")], max_length=4),
                        ),
                        ("samples", models.PositiveIntegerField()),
                        (
                            "cluster",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="tenants.cluster",
                            ),
                        ),
                        (
                            "tenant",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="tenants.tenant",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "tenants_usagerollup",
                        "indexes": [
                            models.Index(fields=["resolution", "time"], name="usage_rollup_time_idx")
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("tenant", "resolution", "time", "cluster", "partition"),
                                name="usage_rollup_one_per_bucket",
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="UsageSample",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("partition", models.CharField(blank=True, default="", max_length=255)),
                        ("time", models.DateTimeField()),
                        ("gpu_used", models.FloatField(blank=True, null=True)),
                        ("gpu_allocated", models.FloatField(blank=True, null=True)),
                        (
                            "cpu_used_millicores",
                            models.FloatField(
                                blank=True,
                                help_text="Kubernetes CPU requests or YARN vCores x 1000.",
                                null=True,
                            ),
                        ),
                        ("cpu_allocated_millicores", models.FloatField(blank=True, null=True)),
                        ("memory_used_bytes", models.FloatField(blank=True, null=True)),
                        ("memory_allocated_bytes", models.FloatField(blank=True, null=True)),
                        ("am_cpu_used_millicores", models.FloatField(blank=True, null=True)),
                        ("am_cpu_limit_millicores", models.FloatField(blank=True, null=True)),
                        ("am_memory_used_bytes", models.FloatField(blank=True, null=True)),
                        ("am_memory_limit_bytes", models.FloatField(blank=True, null=True)),
                        (
                            "workloads_running",
                            models.FloatField(blank=True, help_text="Pods or YARN applications.", null=True),
                        ),
                        ("workloads_pending", models.FloatField(blank=True, null=True)),
                        (
                            "hdfs_space_used_bytes",
                            models.FloatField(
                                blank=True, help_text="Space consumed, replicas included.", null=True
                            ),
                        ),
                        ("hdfs_space_quota_bytes", models.FloatField(blank=True, null=True)),
                        (
                            "hdfs_files_used",
                            models.FloatField(blank=True, help_text="Files and directories.", null=True),
                        ),
                        ("hdfs_files_quota", models.FloatField(blank=True, null=True)),
                        ("gpu_borrowed", models.FloatField(blank=True, null=True)),
                        ("cpu_borrowed_millicores", models.FloatField(blank=True, null=True)),
                        ("memory_borrowed_bytes", models.FloatField(blank=True, null=True)),
                        (
                            "gpu_pending",
                            models.FloatField(
                                blank=True, help_text="Asked for by workloads Kueue holds back.", null=True
                            ),
                        ),
                        ("cpu_pending_millicores", models.FloatField(blank=True, null=True)),
                        ("memory_pending_bytes", models.FloatField(blank=True, null=True)),
                        (
                            "cluster",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="tenants.cluster",
                            ),
                        ),
                        (
                            "tenant",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="tenants.tenant",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "tenants_usagesample",
                        "indexes": [models.Index(fields=["time"], name="usage_sample_time_idx")],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("tenant", "time", "cluster", "partition"),
                                name="usage_sample_one_per_pass",
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="Workload",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                help_text="Pod, Job, PyTorchJob, ... or YARN application.", max_length=64
                            ),
                        ),
                        (
                            "namespace",
                            models.CharField(help_text="Namespace, or the YARN queue.", max_length=253),
                        ),
                        ("name", models.CharField(max_length=253)),
                        (
                            "submitted_by",
                            models.CharField(
                                help_text="ServiceAccount (Kubernetes) or user (YARN) it was submitted as.",
                                max_length=253,
                            ),
                        ),
                        (
                            "username",
                            models.CharField(
                                blank=True, help_text="The Canopy user behind it, when known.", max_length=150
                            ),
                        ),
                        (
                            "state",
                            models.CharField(
                                choices=[
                                    ("pending", "Pending"),
                                    ("running", "Running"),
                                    ("succeeded", "Succeeded"),
                                    ("failed", "Failed"),
                                ],
                                max_length=16,
                            ),
                        ),
                        ("gpu", models.FloatField(default=0)),
                        ("cpu_millicores", models.FloatField(default=0)),
                        ("memory_bytes", models.FloatField(default=0)),
                        ("started_at", models.DateTimeField(blank=True, null=True)),
                        ("seen_at", models.DateTimeField()),
                        (
                            "queue_position",
                            models.PositiveIntegerField(
                                blank=True,
                                help_text="Place in its Kueue ClusterQueue's line; 1 is first.",
                                null=True,
                            ),
                        ),
                        (
                            "waiting_reason",
                            models.TextField(
                                blank=True, help_text="Why Kueue holds it back, in Kueue's words."
                            ),
                        ),
                        (
                            "cluster",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="tenants.cluster",
                            ),
                        ),
                        (
                            "tenant",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="workloads",
                                to="tenants.tenant",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "tenants_workload",
                        "ordering": ["-started_at", "name"],
                        "indexes": [
                            models.Index(fields=["tenant", "username"], name="workload_tenant_user_idx")
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("cluster", "kind", "namespace", "name"), name="workload_unique"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to_usage, content_types_back),
    ]
