"""Credentials at rest: Fernet (AES-128-CBC with an HMAC) under keys from the environment.

`CANOPY_FERNET_KEYS` lists one or more keys: the first encrypts, every one decrypts, so a key is
rotated by putting a new one first and re-saving the connections. Production refuses to start
without it; local and test settings derive one from their Django secret key.
"""

from __future__ import annotations

import functools
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@functools.cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "CANOPY_FERNET_KEYS is empty: Canopy needs a key to encrypt cluster credentials. Make one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`."
        )
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as error:
        raise ImproperlyConfigured(
            f"CANOPY_FERNET_KEYS holds a value that is not a Fernet key: {error}"
        ) from error


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.CANOPY_FERNET_KEYS))


def encrypt(text: str) -> str:
    return fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise ImproperlyConfigured(
            "A stored credential cannot be decrypted with CANOPY_FERNET_KEYS; was the key changed "
            "without keeping the old one in the list?"
        ) from error


class EncryptedTextField(models.TextField):
    """Text kept encrypted in the database and plain on the model instance. Not searchable."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if not value:
            return value
        return decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(value)
