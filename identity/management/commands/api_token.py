"""`manage.py api_token <username>`: an API token for someone who has no password in Canopy (OpenID
Connect users), printed once; Canopy keeps only its digest."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from identity import services


class Command(BaseCommand):
    help = "Print a new API token for a user (for people without a password, e.g. OpenID Connect users)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"There is no active user named {username}.")
        key, expiry = services.api_token_issue(acting_user=user, address="manage.py api_token")
        self.stdout.write(key)
        self.stderr.write(f"Expires: {expiry.isoformat() if expiry else 'never'}")
