"""Every installation has a level-1 `default` tenant, as in the source documents."""

from django.db import migrations


def create_default_tenant(apps, schema_editor):
    Tenant = apps.get_model("tenants", "Tenant")
    if Tenant.objects.filter(depth=1, name="default").exists():
        return
    last_root = Tenant.objects.filter(depth=1).order_by("-path").first()
    # treebeard's materialized path: four base-36 digits a level.
    position = int(last_root.path, 36) + 1 if last_root else 1
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    path = ""
    while position:
        position, digit = divmod(position, 36)
        path = digits[digit] + path
    Tenant.objects.create(
        name="default",
        name_path="default",
        display_name="Default",
        description="The tenant every cluster starts with.",
        path=path.rjust(4, "0"),
        depth=1,
        numchild=0,
    )


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [migrations.RunPython(create_default_tenant, migrations.RunPython.noop)]
