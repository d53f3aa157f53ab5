"""How a path someone typed must look before it reaches a backend: HDFS directories, NFS share base
paths and volume sub-paths. Pure functions returning the problems found (empty: fine); which
tenant may use which path is decided in `tenants.services`.

A path is taken only in its plain form: no '.', '..' or empty parts, no trailing '/', so the
same directory is always written the same way (and a check on its prefix means what it says).
Control characters (newlines, tabs, zero-width and direction marks: Unicode category C) are
refused everywhere: they end lines in the exported hdfs-setup.sh and hide what a path is.
"""

from __future__ import annotations

import posixpath
import unicodedata

PATH_MAX = 1024


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(character).startswith("C") for character in text)


def plain_absolute(path: str) -> str:
    """The plain form of an absolute path: '/a//b/./c/../' -> '/a/b'."""
    return "/" + posixpath.normpath(path).lstrip("/")


def absolute_path_problems(path: str, *, what: str, example: str, forbidden: str = "") -> list[str]:
    """Problems of an absolute path (an HDFS directory, an NFS share's base path). `forbidden`:
    characters the backend does not allow in a name (HDFS: ':')."""
    if not path:
        return [f"Give {what}, e.g. {example}."]
    if has_control_characters(path):
        return [f"{what[0].upper()}{what[1:]} cannot contain newlines or other control characters."]
    if len(path) > PATH_MAX:
        return [f"{what[0].upper()}{what[1:]} has at most {PATH_MAX} characters; this one has {len(path)}."]
    if not path.startswith("/"):
        return [f"{what[0].upper()}{what[1:]} is absolute, e.g. {example}."]
    plain = plain_absolute(path)
    if plain != path:
        return [f"Write the path in its plain form ({plain}), without '..', '.', '//' or a trailing '/'."]
    refused = sorted({character for character in path if character in forbidden})
    if refused:
        return [f"{what[0].upper()}{what[1:]} cannot contain {' or '.join(map(repr, refused))}."]
    return []


def relative_path_problems(path: str, *, what: str, example: str) -> list[str]:
    """Problems of a path below a base directory (a volume's sub-path; "" is the base itself)."""
    if not path:
        return []
    if has_control_characters(path):
        return [f"{what[0].upper()}{what[1:]} cannot contain newlines or other control characters."]
    if len(path) > PATH_MAX:
        return [f"{what[0].upper()}{what[1:]} has at most {PATH_MAX} characters; this one has {len(path)}."]
    if path.startswith("/"):
        return [f"{what[0].upper()}{what[1:]} is relative to the share's base path, e.g. {example}."]
    parts = path.split("/")
    if ".." in parts:
        return [f"{what[0].upper()}{what[1:]} cannot contain '..': a volume stays inside its share."]
    if "" in parts or "." in parts:
        plain = posixpath.normpath(path)
        if plain == ".":
            return ["Leave the sub-path empty for the share's base path itself."]
        return [f"Write the sub-path in its plain form ({plain}), without '.', '//' or a trailing '/'."]
    return []


def inside(path: str, directory: str) -> bool:
    """Whether `path` is `directory` or below it (both plain absolute paths)."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def ancestors(path: str) -> list[str]:
    """The directories above a plain absolute path, nearest last: '/a/b/c' -> ['/', '/a', '/a/b']."""
    parts = path.strip("/").split("/")
    return ["/"] + ["/" + "/".join(parts[:end]) for end in range(1, len(parts))]


def below(base: str, sub_path: str) -> str:
    """`sub_path` under `base` ("" is `base` itself): an NFS volume's directory on its server."""
    return f"{base.rstrip('/')}/{sub_path}" if sub_path else base


def overlapping(sub_path: str, other: str) -> bool:
    """Whether two sub-paths of one base name the same directory or one holds the other."""
    return (
        not sub_path
        or not other
        or f"{sub_path}/".startswith(f"{other}/")
        or f"{other}/".startswith(f"{sub_path}/")
    )
