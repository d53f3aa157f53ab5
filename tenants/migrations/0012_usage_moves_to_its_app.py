# Usage moves to its own app (issue 17): its models leave the tenants' state here and
# usage.0001_initial takes them over with the same tables. No table is touched, so no row moves.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0011_kueue_usage"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="FlavorUsage"),
                migrations.DeleteModel(name="UsageRollup"),
                migrations.DeleteModel(name="UsageSample"),
                migrations.DeleteModel(name="Workload"),
            ],
            database_operations=[],
        ),
    ]
