"""The TXT records of TLS-RPT (RFC 8460 §3) and MTA-STS (RFC 8461 §3.1): build, parse,
and pick the one record that counts among a name's TXT records."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote, urlsplit

TLSRPT_VERSION = "v=TLSRPTv1"
STS_VERSION = "v=STSv1"
TLSRPT_PREFIX = "_smtp._tls"
STS_PREFIX = "_mta-sts"

_FIELD_DELIM = re.compile(r"[ \t]*;[ \t]*")
_RUA_DELIM = re.compile(r"[ \t]*,[ \t]*")
_EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}\Z")
_EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+\Z")
_STS_ID = re.compile(r"[A-Za-z0-9]{1,32}\Z")
# RFC 3986 characters (reserved, unreserved) and %HH; `,` and `;` are delimiters here.
_URI = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+=]|%[0-9A-Fa-f]{2})+\Z")
_MUST_ENCODE = {",": "%2C", "!": "%21", ";": "%3B"}


class RecordError(ValueError):
    """Text that is not a valid record, or input that cannot make one."""


@dataclass(frozen=True)
class TlsrptRecord:
    """`v=TLSRPTv1; rua=URI,URI` plus any extensions (kept, not interpreted)."""

    rua: tuple[str, ...]
    extensions: tuple[tuple[str, str], ...] = ()

    def text(self) -> str:
        fields = [TLSRPT_VERSION, "rua=" + ",".join(self.rua)]
        fields += [f"{name}={value}" for name, value in self.extensions]
        return "; ".join(fields)


@dataclass(frozen=True)
class StsRecord:
    """`v=STSv1; id=ID;` plus any extensions."""

    id: str
    extensions: tuple[tuple[str, str], ...] = ()

    def text(self) -> str:
        fields = [STS_VERSION, f"id={self.id}"]
        fields += [f"{name}={value}" for name, value in self.extensions]
        return "; ".join(fields) + ";"


def join_strings(strings: Sequence[bytes]) -> str:
    """One TXT record's character-strings joined without spaces (RFC 8460 §3)."""
    return b"".join(strings).decode("utf-8", "replace")


def select_record(texts: Sequence[str], version: str) -> str:
    """Keep the records that begin with `VERSION;` (WSP allowed before `;`, RFC 8461 erratum
    6285); exactly one must remain, or senders act as if there were none."""
    start = re.compile(re.escape(version) + r"[ \t]*;")
    chosen = [t for t in texts if start.match(t)]
    if len(chosen) == 1:
        return chosen[0]
    if len(chosen) > 1:
        raise RecordError(
            f"{len(chosen)} records begin with {version}; senders then ignore them all"
        )
    near = [t for t in texts if t.lower().startswith(version.lower())]
    if near:
        raise RecordError(
            f"no record begins with {version};: found {near[0]!r} "
            f"(the version tag is case-sensitive and ends with ';')"
        )
    if texts:
        raise RecordError(f"none of the {len(texts)} TXT records begins with {version};")
    raise RecordError("no TXT record")


def _fields(text: str, version: str) -> list[tuple[str, str]]:
    parts = _FIELD_DELIM.split(text)
    if parts and parts[-1] == "":
        parts.pop()  # a trailing delimiter is allowed
    if not parts or parts[0] != version:
        found = parts[0] if parts else ""
        hint = " (case-sensitive)" if found.lower() == version.lower() else ""
        raise RecordError(f"the record must begin with {version}{hint}, not {found!r}")
    fields = []
    for part in parts[1:]:
        name, eq, value = part.partition("=")
        if not part:
            raise RecordError("empty field (two ';' in a row)")
        if not eq or not _EXT_NAME.match(name):
            raise RecordError(f"field {part!r} is not name=value")
        fields.append((name, value))
    return fields


def _extensions(fields: list[tuple[str, str]], known: str) -> tuple[tuple[str, str], ...]:
    extensions = []
    for name, value in fields:
        if name == known:
            continue
        if name.lower() == known:
            raise RecordError(f"field name {name!r} must be written {known!r} (case-sensitive)")
        if not _EXT_VALUE.match(value):
            raise RecordError(f"field {name}={value!r}: value has a space or a forbidden character")
        extensions.append((name, value))
    return tuple(extensions)


def _only(fields: list[tuple[str, str]], name: str) -> str:
    values = [v for n, v in fields if n == name]
    if not values:
        raise RecordError(f"no {name}= field")
    if len(values) > 1:
        raise RecordError(f"{len(values)} {name}= fields; there must be one")
    return values[0]


def parse_tlsrpt(text: str) -> TlsrptRecord:
    """Parse one `_smtp._tls` record against the RFC 8460 §3 grammar."""
    fields = _fields(text, TLSRPT_VERSION)
    extensions = _extensions(fields, "rua")
    uris = tuple(_RUA_DELIM.split(_only(fields, "rua")))
    for uri in uris:
        check_rua_uri(uri)
    return TlsrptRecord(uris, extensions)


def parse_sts(text: str) -> StsRecord:
    """Parse one `_mta-sts` record against the RFC 8461 §3.1 grammar."""
    fields = _fields(text, STS_VERSION)
    extensions = _extensions(fields, "id")
    sts_id = _only(fields, "id")
    if not _STS_ID.match(sts_id):
        raise RecordError(f"id={sts_id!r}: the id is 1 to 32 letters and digits")
    return StsRecord(sts_id, extensions)


def check_rua_uri(uri: str) -> None:
    """A `mailto:` address or an `https:` URL, as RFC 3986 characters."""
    if not uri:
        raise RecordError("empty rua URI")
    if not _URI.match(uri):
        raise RecordError(
            f"rua URI {uri!r} has characters a URI cannot hold (spaces, quotes, non-ASCII)"
        )
    scheme, _, rest = uri.partition(":")
    if scheme.lower() == "mailto":
        address = unquote(rest.partition("?")[0])
        local, at, domain = address.rpartition("@")
        if not at or not local or "." not in domain:
            raise RecordError(f"rua URI {uri!r}: mailto: needs one address like name@example.com")
    elif scheme.lower() == "https":
        try:
            parts = urlsplit(uri)
            _ = parts.port
        except ValueError as exc:
            raise RecordError(f"rua URI {uri!r}: {exc}") from exc
        if not parts.hostname:
            raise RecordError(f"rua URI {uri!r}: https: needs a host")
    else:
        raise RecordError(f"rua URI {uri!r}: only mailto: and https: are allowed")


def encode_rua_uri(value: str) -> str:
    """A rua URI from user input: a bare address becomes `mailto:`; `,` `!` `;` are
    percent-encoded (RFC 8460 §3); the result is validated."""
    text = value.strip()
    if "@" in text and ":" not in text.partition("@")[0]:
        text = "mailto:" + text
    encoded = "".join(_MUST_ENCODE.get(ch, ch) for ch in text)
    check_rua_uri(encoded)
    return encoded


def new_sts_id(now: datetime) -> str:
    """A fresh policy id: the UTC time, like RFC 8461's example `20160831085700Z`."""
    return now.strftime("%Y%m%d%H%M%S") + "Z"


def build_tlsrpt(rua: Sequence[str]) -> TlsrptRecord:
    if not rua:
        raise RecordError("give at least one --rua (mailto:ADDRESS or https://URL)")
    record = TlsrptRecord(tuple(encode_rua_uri(u) for u in rua))
    if parse_tlsrpt(record.text()) != record:  # what we print must read back the same
        raise RecordError(f"cannot build a valid record from {list(rua)}")
    return record


def build_sts(sts_id: str) -> StsRecord:
    record = StsRecord(sts_id)
    return parse_sts(record.text())


def rua_target(uri: str) -> str:
    """A comparable form: `mailto:` lowercased address, or the https URL with lowercase
    scheme and host, default port dropped, and no fragment."""
    scheme, _, rest = uri.partition(":")
    if scheme.lower() == "mailto":
        return "mailto:" + unquote(rest.partition("?")[0]).lower()
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    port = f":{parts.port}" if parts.port not in (None, 443) else ""
    path = unquote(parts.path) or "/"
    query = f"?{parts.query}" if parts.query else ""
    return f"https://{host}{port}{path}{query}"
