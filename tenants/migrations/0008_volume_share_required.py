"""Every volume has its share (0007): the share is required, and the volume's own server and
export path go (they are the share's server and base path plus the volume's sub-path)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tenants", "0007_volumes_to_nfs_shares")]

    operations = [
        migrations.AlterField(
            model_name="volume",
            name="share",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="volumes", to="tenants.nfsshare"
            ),
        ),
        # With a default first, so that going back re-adds the columns to existing rows (0007's
        # reverse then fills them in).
        migrations.AlterField(
            model_name="volume",
            name="server",
            field=models.CharField(default="", help_text="NFS server host name or address.", max_length=253),
        ),
        migrations.AlterField(
            model_name="volume",
            name="export_path",
            field=models.CharField(default="", help_text="Directory on the NFS server.", max_length=1024),
        ),
        migrations.RemoveField(model_name="volume", name="server"),
        migrations.RemoveField(model_name="volume", name="export_path"),
    ]
