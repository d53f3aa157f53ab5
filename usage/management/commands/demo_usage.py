"""DEMO ONLY: `manage.py demo_usage [--backfill-days N] [--follow]` makes usage figures up for the
embedded default (see usage/demo.py). Refused unless CANOPY_DEMO_USAGE is on."""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from tenants.management.repeat import every_until_stopped
from usage import demo, services


class Command(BaseCommand):
    help = "DEMO ONLY: invent usage figures so the embedded console's charts are not empty."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--backfill-days", type=int, default=0, help="Invent this many days of history first."
        )
        parser.add_argument(
            "--follow", action="store_true", help="Keep inventing a pass every --interval seconds."
        )
        parser.add_argument("--interval", type=float, default=15.0)

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.CANOPY_DEMO_USAGE:
            raise CommandError(
                "Refused: the demo usage generator makes figures up and runs only where CANOPY_DEMO_USAGE "
                "is on (the embedded default). Real figures come from the collectors."
            )
        now = timezone.now()
        if options["backfill_days"]:
            written = demo.demo_backfill(now, days=options["backfill_days"])
            if written:
                self.stdout.write(
                    f"Demo usage: invented {written} samples over {options['backfill_days']} days."
                )
            else:
                self.stdout.write(
                    "Demo usage: the history is there already (the console ran in the last 2 hours)."
                )
        demo.demo_record(now)
        admin = get_user_model().objects.filter(is_staff=True, is_active=True).order_by("pk").first()
        if admin is not None and demo.demo_prices(admin):
            self.stdout.write(
                "Demo usage: made-up prices (EUR) on each cluster's default pool, for the showback."
            )
        if not options["follow"]:
            return
        every_until_stopped(options["interval"], _demo_pass)


def _demo_pass() -> None:
    now = timezone.now()
    demo.demo_record(now)
    services.usage_rollup(resolution="hour", start=now - datetime.timedelta(hours=1), end=now)
    services.usage_rollup(resolution="day", start=now, end=now)
