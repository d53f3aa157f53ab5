"""`manage.py export_manifests`: write the desired Kubernetes manifests as YAML files for GitOps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning import services
from tenants.models import Cluster, Tenant


class Command(BaseCommand):
    help = (
        "Write the desired manifests of one tenant (--tenant department1/dev1) or of all, a folder per "
        "cluster and namespace: <output>/<cluster>/<namespace>/NN-<kind>-<name>.yaml. Files of objects a "
        "tenant no longer has are removed. Nothing is pushed to any cluster."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="A tenant's path, e.g. department1/dev1. Default: every tenant.")
        parser.add_argument("--cluster", help="Only this Kubernetes cluster (its name).")
        parser.add_argument(
            "--output", default=settings.CANOPY_EXPORT_DIR, help="Default: CANOPY_EXPORT_DIR."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenants = Tenant.objects.order_by("path")
        if options["tenant"]:
            tenants = tenants.filter(name_path=options["tenant"].strip("/"))
            if not tenants.exists():
                raise CommandError(f"No tenant {options['tenant']}.")
        cluster = None
        if options["cluster"]:
            cluster = Cluster.objects.filter(name=options["cluster"], kind=Cluster.Kind.KUBERNETES).first()
            if cluster is None:
                raise CommandError(f"No Kubernetes cluster named {options['cluster']}.")
        root = Path(options["output"])
        folders = services.manifests_export(tenants=list(tenants), root=root, cluster=cluster)
        for folder in folders:
            self.stdout.write(f"{root / folder}")
        self.stdout.write(self.style.SUCCESS(f"Wrote {len(folders)} tenant folder(s) under {root}."))
