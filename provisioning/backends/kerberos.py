"""Kerberos (SPNEGO) sign-in for the HTTP backends, through python-gssapi and requests-gssapi
(Canopy's `[kerberos]` extra, which builds against MIT Kerberos' libkrb5-dev).

- With a keytab, Canopy signs in as the connection's principal itself. The keytab is written to a
  private temporary file for as long as the backend lives and handed to MIT Kerberos as a *client
  keytab* (`gss_acquire_cred_from`) with a MEMORY ticket cache of its own: tickets are fetched and
  renewed from the keytab, the worker's own ticket cache is never touched, and two connections
  never share tickets.
- Without a keytab, the worker's default ticket cache is used (kinit, k5start or a sidecar keep it
  fresh), optionally for a named principal in a cache collection.

Which KDC serves which realm comes from the worker's krb5.conf (`/etc/krb5.conf` or
`KRB5_CONFIG`), as for every Kerberos client. Everything is done lazily, on the first request, so a
missing library or a bad keytab becomes a `BackendError` on that request, shown where the push or
the connection test is shown.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import struct
import tempfile
import uuid
from typing import Any

import requests

from provisioning.backends.base import BackendError

try:
    import gssapi
    from requests_gssapi import OPTIONAL, HTTPSPNEGOAuth
    from requests_gssapi.exceptions import SPNEGOExchangeError
except ImportError:  # the [kerberos] extra is not installed; simple auth still works
    gssapi = None  # type: ignore[assignment]  # mypy cannot type an optional import's absence
    SPNEGO_ERRORS: tuple[type[Exception], ...] = ()
else:
    SPNEGO_ERRORS = (gssapi.exceptions.GSSError, SPNEGOExchangeError)

# MIT and Heimdal keytabs start with a format byte 5 and version 1 or 2.
_KEYTAB_MAGIC = (b"\x05\x01", b"\x05\x02")


def keytab_principals(data: bytes) -> list[str]:
    """The principals a keytab holds keys for, in file order without repeats (MIT's file format:
    version 0x0502 big-endian, 0x0501 host order; a negative entry size is a hole)."""
    if not data.startswith(_KEYTAB_MAGIC):
        raise ValueError("Not a keytab: a keytab file starts with the bytes 05 02 (see `klist -k`).")
    order = ">" if data[1] == 2 else "="
    found: list[str] = []
    offset = 2
    try:
        while offset + 4 <= len(data):
            (size,) = struct.unpack_from(order + "i", data, offset)
            offset += 4
            if size <= 0:
                offset += -size
                continue
            if offset + size > len(data):
                raise struct.error(f"an entry of {size} bytes at {offset} runs past the end")
            entry, offset = data[offset : offset + size], offset + size
            (count,) = struct.unpack_from(order + "H", entry, 0)
            position = 2
            parts = []
            for _ in range(count + 1):  # the realm, then each component
                (length,) = struct.unpack_from(order + "H", entry, position)
                parts.append(entry[position + 2 : position + 2 + length].decode())
                position += 2 + length
            if data[1] == 1:
                count -= 1  # version 1 counted the realm among the components
            principal = "/".join(parts[1:]) + "@" + parts[0]
            if principal not in found:
                found.append(principal)
    except (struct.error, UnicodeDecodeError) as error:
        raise ValueError(f"Not a keytab: cut short or damaged ({error}).") from error
    return found


def keytab_principals_from_base64(keytab_base64: str) -> list[str]:
    """`keytab_principals` of a base64 keytab; ValueError says what is wrong with it."""
    try:
        data = base64.b64decode(keytab_base64, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError("Not base64: encode the keytab file, e.g. `base64 -w0 canopy.keytab`.") from error
    principals = keytab_principals(data)
    if not principals:
        raise ValueError("The keytab holds no keys.")
    return principals


def _remembering(base: type) -> type:
    class RememberingSPNEGOAuth(base):
        """requests-gssapi logs a failed exchange and hands back the server's bare 401; keep its
        reason (Kerberos' own words) so the 401 can be explained."""

        last_error = ""

        def generate_request_header(self, *args: Any, **kwargs: Any) -> str:
            try:
                return super().generate_request_header(*args, **kwargs)
            except SPNEGOExchangeError as error:
                self.last_error = str(error)
                raise

    return RememberingSPNEGOAuth


class KerberosAuth(requests.auth.AuthBase):
    """SPNEGO for a `requests.Session`; `close()` removes the keytab's temporary copy."""

    def __init__(self, *, principal: str = "", keytab_base64: str = "") -> None:
        self.principal = principal
        self.keytab_base64 = keytab_base64
        self._spnego: Any = None
        self._directory: str | None = None

    def _credentials(self) -> Any:
        name = gssapi.Name(self.principal, gssapi.NameType.kerberos_principal) if self.principal else None
        if not self.keytab_base64:
            return gssapi.Credentials(name=name, usage="initiate")
        self._directory = tempfile.mkdtemp(prefix="canopy-krb5-")  # mode 0700
        path = os.path.join(self._directory, "client.keytab")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as keytab:
            keytab.write(base64.b64decode(self.keytab_base64))
        store: dict[bytes | str, bytes | str] = {
            "client_keytab": path,
            "ccache": f"MEMORY:canopy-{uuid.uuid4().hex}",
        }
        return gssapi.Credentials(name=name, usage="initiate", store=store)

    def _auth(self) -> Any:
        if self._spnego is None:
            if gssapi is None:
                raise BackendError(
                    "Kerberos needs Canopy's [kerberos] extra: pip install 'canopy[kerberos]' "
                    "(it builds against MIT Kerberos' libkrb5-dev).",
                )
            # OPTIONAL: check the server's token when it sends one; Hadoop sends none on the
            # requests its auth cookie lets through.
            self._spnego = _remembering(HTTPSPNEGOAuth)(
                creds=self._credentials(), mutual_authentication=OPTIONAL
            )
        return self._spnego

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        auth = self._auth()
        auth.last_error = ""
        return auth(request)

    def failure(self, response: requests.Response) -> str:
        """Why Kerberos could not sign this 401 response's request in, or "" if it could."""
        if response.status_code != 401 or self._spnego is None:
            return ""
        return self._spnego.last_error

    def close(self) -> None:
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
        self._spnego = None
