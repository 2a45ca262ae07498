"""Storage strings: which backend they name, and how to show them without their password."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from hpsearch.storage.errors import StorageError

DEFAULT_JOURNAL = "./hpsearch.journal"
ENV_VAR = "HPSEARCH_STORAGE"

# `postgres://` is what Heroku-style tools print; SQLAlchemy dropped that alias, so we map it.
POSTGRES_SCHEMES = ("postgresql+psycopg2", "postgresql", "postgres")
_KNOWN = "postgresql+psycopg2://USER:PASSWORD@HOST:PORT/DB, grpc://HOST:PORT, journal:PATH or a file path"

_SCHEME_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$", re.DOTALL)
_SCHEME_NO_SLASHES_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):(?!//)")
# A URL inside a longer message: its password runs to the token's last "@".
_EMBEDDED_USERINFO_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)\S*@")
# libpq also takes the password as a query parameter or a `key=value` DSN word.
# The value runs to the next "&" or space: a trailing ")" is lost rather than a password's tail shown.
_PASSWORD_PARAM_RE = re.compile(r"((?:^|[^A-Za-z0-9_])password=)[^&\s]*", re.IGNORECASE)

Kind = Literal["rdb", "journal", "grpc"]
# A password shorter than this is masked in its URL field only, not wherever its letters occur in a message.
MIN_MASKED_SECRET = 6


@dataclass(frozen=True)
class StorageSpec:
    """A parsed storage string: the backend kind and its target (URL, file path or host)."""

    kind: Kind
    target: str
    port: int | None = None


def redact_url(url: str) -> str:
    """Return `url` with its password replaced by `***`, safe for messages and logs.

    Also takes a whole message (any text with spaces) and redacts every URL inside it.
    """
    if any(c.isspace() for c in url):
        return _PASSWORD_PARAM_RE.sub(r"\1***", _EMBEDDED_USERINFO_RE.sub(r"\1***@", url))
    head, rest = _split_scheme(url)
    # The user info ends at the LAST "@": an unescaped "@" or "/" inside a password must not leak,
    # and redacting a little too much is the safe way to be wrong.
    at = rest.rfind("@")
    if at >= 0 and ":" in rest[:at]:
        user = rest[:at].split(":", 1)[0]
        url = f"{head}{user}:***{rest[at:]}"
    return _PASSWORD_PARAM_RE.sub(r"\1***", url)


def secrets_of(url: str) -> set[str]:
    """The password of `url` in every spelling that could show up in a driver's message."""
    _, rest = _split_scheme(url)
    found: set[str] = set()
    for at in (rest.find("@"), rest.rfind("@")):
        if at >= 0 and ":" in rest[:at]:
            found.add(rest[:at].split(":", 1)[1])
    found.update(m.group(0).split("=", 1)[1] for m in _PASSWORD_PARAM_RE.finditer(url))
    found |= {unquote(s) for s in found}
    return {s for s in found if s}


def _split_scheme(url: str) -> tuple[str, str]:
    # A string without "://" may still be a URL with its scheme forgotten: redact it all the same.
    match = _SCHEME_RE.match(url)
    if match:
        return match["scheme"] + "://", match["rest"]
    return "", url


def scrub(text: str, url: str) -> str:
    """Collapse `text` to one line and mask passwords in it: every URL's password field and `password=` value,
    and `url`'s own password wherever it appears when it is long enough not to match ordinary words."""
    text = _EMBEDDED_USERINFO_RE.sub(r"\1***@", text)
    for secret in sorted(secrets_of(url), key=len, reverse=True):
        # A short password also spells parts of words: masking "p" everywhere turned "port 1" into "***ort 1".
        if len(secret) >= MIN_MASKED_SECRET:
            text = text.replace(secret, "***")
    return " ".join(_PASSWORD_PARAM_RE.sub(r"\1***", text).split())


def resolve_storage_string(url: str | None) -> str:
    """The storage string to use: `url`, else `$HPSEARCH_STORAGE`, else the journal file."""
    if url is None:
        url = os.environ.get(ENV_VAR) or DEFAULT_JOURNAL
    return url


def parse_storage_string(url: str) -> StorageSpec:
    """Decide which backend `url` names; raise StorageError for anything malformed."""
    if not url.strip():
        raise StorageError(f"the storage string is empty; give one of {_KNOWN}")
    if url.startswith("journal:"):
        return StorageSpec("journal", _journal_path(url, url.removeprefix("journal:")))
    match = _SCHEME_RE.match(url)
    if match is None:
        bare = _SCHEME_NO_SLASHES_RE.match(url)
        if bare and bare["scheme"].lower() in (*POSTGRES_SCHEMES, "grpc"):
            raise StorageError(
                f"storage string {bare['scheme'] + ':'!r}... lacks '//' after the scheme; write {_KNOWN}"
            )
        return StorageSpec("journal", _journal_path(url, url))
    scheme = match["scheme"].lower()
    if scheme in POSTGRES_SCHEMES:
        return StorageSpec("rdb", "postgresql+psycopg2://" + match["rest"])
    if scheme == "grpc":
        return _grpc_spec(url)
    raise StorageError(f"unknown storage scheme {scheme + '://'!r} in {redact_url(url)!r}; use {_KNOWN}")


def _journal_path(url: str, path: str) -> str:
    if not path or path.startswith("//"):
        raise StorageError(
            f"storage {redact_url(url)!r} names no journal file;"
            " write journal:PATH, e.g. journal:./hpsearch.journal"
        )
    shown = redact_url(path)  # a URL typed without its scheme lands here, password and all
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise StorageError(
            f"the folder {redact_url(parent)!r} for journal file {shown!r} does not exist; create it first"
            f" (or write a URL such as {_KNOWN.split(',')[0]})"
        )
    if os.path.isdir(path):
        raise StorageError(
            f"journal path {shown!r} is a folder; name a file inside it, e.g. {shown}/hpsearch.journal"
        )
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        # /dev/null takes writes but not fsync, /dev/full fails every write: neither keeps a campaign.
        raise StorageError(f"journal path {shown!r} is not a regular file; name a file, e.g. ./hpsearch.journal")
    return path


def _grpc_spec(url: str) -> StorageSpec:
    fix = "write grpc://HOST:PORT, e.g. grpc://127.0.0.1:13000"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise StorageError(f"storage {redact_url(url)!r} has an invalid port; {fix}") from None
    if not parts.hostname or port is None:
        raise StorageError(f"storage {redact_url(url)!r} needs both a host and a port; {fix}")
    if parts.path.strip("/") or parts.query or parts.username:
        raise StorageError(f"storage {redact_url(url)!r} has parts a gRPC proxy does not take; {fix}")
    return StorageSpec("grpc", parts.hostname, port)
