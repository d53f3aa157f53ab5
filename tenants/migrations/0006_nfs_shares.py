"""NFS shares (issue 15, point 2): platform admins register shares and grant them to tenants; a
volume names its share and a sub-path. This step adds the tables and the volume's new columns
(nullable until 0007 fills them); 0008 drops the volume's own server and export path."""

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tenants", "0005_tenant_parent_path_idx")]

    operations = [
        migrations.CreateModel(
            name="NfsShare",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "name",
                    models.CharField(
                        max_length=63,
                        validators=[
                            django.core.validators.RegexValidator(
                                "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\Z",
                                "Use 1 to 63 lower-case letters, digits and '-', starting and ending with a letter "
                                "or digit (a DNS-1123 label, e.g. dev1 or team-a).",
                            )
                        ],
                    ),
                ),
                ("server", models.CharField(help_text="NFS server host name or IP address.", max_length=253)),
                (
                    "base_path",
                    models.CharField(
                        help_text="The exported directory; volumes are sub-directories of it.", max_length=1024
                    ),
                ),
                ("description", models.TextField(blank=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "cluster",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="nfs_shares", to="tenants.cluster"
                    ),
                ),
            ],
            options={
                "ordering": ["cluster__name", "name"],
                "constraints": [
                    models.UniqueConstraint(fields=("cluster", "name"), name="nfs_share_name_unique_in_cluster")
                ],
            },
            bases=(models.Model,),
        ),
        migrations.CreateModel(
            name="NfsShareGrant",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "share",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="grants", to="tenants.nfsshare"
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="nfs_share_grants",
                        to="tenants.tenant",
                    ),
                ),
            ],
            options={
                "ordering": ["share__name", "tenant__path"],
                "constraints": [models.UniqueConstraint(fields=("share", "tenant"), name="nfs_share_grant_once")],
            },
        ),
        migrations.AddField(
            model_name="nfsshare",
            name="tenants",
            field=models.ManyToManyField(
                related_name="nfs_shares", through="tenants.NfsShareGrant", to="tenants.tenant"
            ),
        ),
        migrations.AddField(
            model_name="volume",
            name="share",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.PROTECT, related_name="volumes", to="tenants.nfsshare"
            ),
        ),
        migrations.AddField(
            model_name="volume",
            name="sub_path",
            field=models.CharField(
                blank=True,
                default="",
                help_text="The directory below the share's base path, e.g. dev1; empty: the base path itself.",
                max_length=1024,
            ),
            preserve_default=False,
        ),
    ]
