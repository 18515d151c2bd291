"""What a --storage string is, and the only way one is shown.

A study lives in a journal file (one machine) or an Optuna RDB URL (PostgreSQL for
many machines). `classify_storage` tells which, or that the string looks like a URL
and is not a well-formed one (a mistyped scheme, a raw '@' in a password), so such a
string is refused instead of being taken for a journal path. `redact` masks the
password of any storage string, well-formed or not, so none reaches an output, a file
name or a record. Pure string functions: no storage is opened here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

import sqlalchemy.engine
import sqlalchemy.exc

from finscale.errors import InputError

# What a storage string is: a local journal file, or an Optuna RDB URL by its engine.
StorageKind = Literal["journal", "sqlite", "postgresql", "rdb"]
DATABASE_KINDS: frozenset[str] = frozenset({"sqlite", "postgresql", "rdb"})
URL_FORM = "scheme://user:password@host:port/database (sqlite:///FILE, postgresql://...)"

# A URL's scheme and its ':' (`postgresql:`, `sqlite:`, `mysql+pymysql:`).
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
# A path segment with a ':' and then an '@': credentials (user:password@host).
_CREDENTIALS = re.compile(r"(?:^|/)[^/]*:[^/]*@")


@dataclass(frozen=True)
class StorageClass:
    """What a --storage string is. `kind` is None for one that looks like a URL and
    is not a well-formed one; `problem` then says why, quoting none of the string."""

    kind: StorageKind | None
    problem: str | None = None


def classify_storage(storage: str) -> StorageClass:
    """A journal path, a sqlite or PostgreSQL URL, another RDB URL, or malformed.

    A string looks like a URL when it starts with a scheme and ':/' (`postgres:/...`),
    or its first path segment holds both '@' and ':', or any segment holds a ':'
    and then an '@' (`user:password@host`); such a string is never a file name, so a
    mistyped URL is refused instead of becoming folders named after its password."""
    if not _looks_like_url(storage):
        return StorageClass("journal")
    scheme_match = _SCHEME.match(storage)
    rest = storage[scheme_match.end() :] if scheme_match else storage
    if scheme_match is None or not (rest.startswith("/") or _is_database_word(scheme_match[1])):
        return StorageClass(None, "it has credentials (user:password@) but no scheme://")
    scheme = scheme_match.group(1)
    if not rest.startswith("//"):
        return StorageClass(None, f"'{scheme}:' is not followed by '//'")
    try:
        url = sqlalchemy.engine.make_url(storage)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        # SQLAlchemy's ValueError quotes the port text, which may hold a password.
        return StorageClass(None, "its host, port or database cannot be read (a port is a number)")
    if "@" in (url.host or ""):
        return StorageClass(None, "its host holds an '@' (write an '@' of a password as %40)")
    try:
        url.get_dialect()
    except Exception:  # NoSuchModuleError, or a dialect whose module fails to import
        known = "postgresql, sqlite, mysql"
        hint = "; PostgreSQL's is postgresql://" if scheme.startswith("postgres") else ""
        return StorageClass(None, f"no database scheme {scheme!r} ({known}, ...){hint}")
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database in (None, "", ":memory:"):
            return StorageClass(None, "a sqlite study needs a file: sqlite:///FILE")
        return StorageClass("sqlite")
    return StorageClass("postgresql" if backend == "postgresql" else "rdb")


def _is_database_word(scheme: str) -> bool:
    return scheme.lower().startswith(("sqlite", "postgres", "mysql", "mariadb", "oracle", "mssql"))


def _looks_like_url(storage: str) -> bool:
    scheme = _SCHEME.match(storage)
    first_segment = storage.split("/", 1)[0]
    return bool(
        (scheme and storage[scheme.end() :].startswith("/"))
        or ("@" in first_segment and ":" in first_segment)
        or _CREDENTIALS.search(storage)
    )


def check_storage(storage: str) -> StorageKind:
    """The kind of a storage string; `InputError` (its password redacted) when it looks
    like a URL and is not a well-formed one."""
    classified = classify_storage(storage)
    if classified.kind is None:
        raise InputError(
            f"storage {redact(storage)} is not a well-formed URL: {classified.problem}; "
            f"write {URL_FORM}, or give the path of a journal file",
            "storage",
        )
    return classified.kind


def is_database(storage: str) -> bool:
    """Whether `storage` is an RDB URL (sqlite:///, postgresql://, mysql://) rather than
    the path of a journal file."""
    return classify_storage(storage).kind in DATABASE_KINDS


def redact(storage: str) -> str:
    """A storage string fit to show: a URL without its password (in its user info or a
    `password=` of its query); one that looks like a URL and is not well formed without
    anything between its scheme and its last '@' (all of it after the scheme when it
    has no '@' but a second ':')."""
    for start, end in reversed(_secret_spans(storage)):
        storage = storage[:start] + "***" + storage[end:]
    return storage


def scrub(text: str, storage: str) -> str:
    """`text` (an error message, a log line) with the password of `storage` masked,
    as typed and as the driver reads it (%-decoded)."""
    for start, end in _secret_spans(storage):
        typed = storage[start:end]
        for form in sorted({typed, unquote(typed)}, key=len, reverse=True):
            if form:
                text = text.replace(form, "***")
    return text


# A password given as a query parameter, which libpq and the MySQL drivers accept.
_QUERY_SECRET = re.compile(r"[?&](?:password|passwd|pwd|sslpassword)=([^&#]*)", re.IGNORECASE)


def _secret_spans(storage: str) -> list[tuple[int, int]]:
    """Where the passwords of `storage` are, as sorted, disjoint (start, end) spans."""
    classified = classify_storage(storage)
    if classified.kind == "journal":
        return []
    spans = [m.span(1) for m in _QUERY_SECRET.finditer(storage) if m.end(1) > m.start(1)]
    user_info = _user_info_secret(storage, well_formed=classified.kind is not None)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans + ([user_info] if user_info else [])):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _user_info_secret(storage: str, well_formed: bool) -> tuple[int, int] | None:
    at = storage.rfind("@")
    if well_formed:  # user:PASSWORD@ after the '//'
        if at < 0:
            return None
        colon = storage.find(":", storage.index("//") + 2, at)
        return (colon + 1, at) if colon >= 0 and colon + 1 < at else None
    scheme = _SCHEME.match(storage)
    start = scheme.end() if scheme else 0
    if storage.startswith("//", start):
        start += 2
    if at >= start:
        return (start, at) if at > start else None
    return (start, len(storage)) if ":" in storage[start:] else None
