# Usage moves to its own app (issue 17): UsageCollection leaves provisioning's state here and
# usage.0001_initial takes it over with the same table. No table is touched, so no row moves.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("provisioning", "0006_kubernetes_quota_engine"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="UsageCollection")],
            database_operations=[],
        ),
    ]
