"""`manage.py demo_quota_requests`: the demo's open quota request (quotas/demo.py), after load_demo."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from quotas.demo import demo_quota_requests


class Command(BaseCommand):
    help = "Demo data: Bob's open request for a second GPU for department1/dev1 (after load_demo)."

    def handle(self, *args: Any, **options: Any) -> None:
        made = demo_quota_requests()
        if made is None:
            self.stdout.write("Demo quota request: no demo tenants (run load_demo first).")
        else:
            who = made.deciding_tenant.name_path if made.deciding_tenant else "the platform admins"
            self.stdout.write(f"Demo quota request #{made.pk}: bob asks for 2 GPUs for dev1 ({who} decide).")
