"""`manage.py allocation_grants_end [--follow --interval 60]`: end the time-bound grants whose time
has come, as beat's `provisioning.allocation_grants_end_due` does, where no Celery beat runs (the
embedded default's `scripts/console.sh` runs it with --follow)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tenants import services
from tenants.management.repeat import every_until_stopped


class Command(BaseCommand):
    help = "End the time-bound grants whose end time has come (back to the amounts before)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--follow", action="store_true", help="Keep going every --interval seconds.")
        parser.add_argument("--interval", type=float, default=60.0)

    def handle(self, *args: Any, **options: Any) -> None:
        self._pass()
        if not options["follow"]:
            return
        every_until_stopped(options["interval"], self._pass)

    def _pass(self) -> None:
        for grant_id, state in services.allocation_grants_end_due().items():
            self.stdout.write(f"Time-bound grant {grant_id}: {state}.")
