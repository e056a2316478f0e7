"""Parse a tracefs event format file (events/<system>/<event>/format) and the ring-buffer
page header description (events/header_page).

Offsets and reason numbers differ between kernels: skb:kfree_skb gained `reason` in 5.17
(commit c504e5c2f964), every reason moved by one when SKB_NOT_DROPPED_YET took 0 (5.19),
and `rx_sk` (6.11) moved `protocol` and `reason`. So nothing here is a constant: the
running kernel's text is the only truth (tests/fixtures/tracefs has texts from 5.10 to
6.18)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FIELD = re.compile(
    r"field:\s*(?P<decl>[^;]+);\s*offset:(?P<off>\d+);\s*size:(?P<size>\d+);"
    r"(?:\s*signed:(?P<signed>\d+);)?"
)
_SYMBOLIC = re.compile(r"__print_symbolic\(\s*REC->(?P<field>\w+)\s*,(?P<body>.*)\)", re.S)
_PAIR = re.compile(r'\{\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*,\s*"([^"]*)"\s*\}')


class FormatError(ValueError):
    """The text is not a tracefs format description we can read safely."""


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    ctype: str
    offset: int
    size: int
    signed: bool


@dataclass(frozen=True, slots=True)
class EventFormat:
    name: str
    id: int
    fields: dict[str, Field]
    # __print_symbolic tables of the print fmt line, by field: {"reason": {2: "NOT_SPECIFIED"}}
    symbols: dict[str, dict[int, str]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Bytes of a record: the end of the last field."""
        return max(f.offset + f.size for f in self.fields.values())

    def require(self, *names: str) -> None:
        missing = [n for n in names if n not in self.fields]
        if missing:
            raise FormatError(f"event {self.name} has no field {', '.join(missing)}")


def _field_name(decl: str) -> tuple[str, str]:
    """'unsigned short protocol' -> ('protocol', 'unsigned short');
    'void * skbaddr' -> ('skbaddr', 'void *'); 'char comm[16]' -> ('comm', 'char[16]')."""
    decl = decl.strip()
    m = re.match(r"^(?P<type>.*?)(?P<name>\w+)\s*(?P<arr>\[[^\]]*\])?$", decl)
    if not m or not m.group("type").strip():
        raise FormatError(f"cannot read field declaration {decl!r}")
    ctype = m.group("type").strip() + (m.group("arr") or "")
    return m.group("name"), ctype


def parse_format(text: str) -> EventFormat:
    name = re.search(r"^name:\s*(\S+)", text, re.M)
    ident = re.search(r"^ID:\s*(\d+)", text, re.M)
    if not name or not ident:
        raise FormatError("no name: or ID: line (not a tracefs event format file)")
    fields: dict[str, Field] = {}
    for m in _FIELD.finditer(text):
        fname, ctype = _field_name(m.group("decl"))
        fields[fname] = Field(
            fname, ctype, int(m.group("off")), int(m.group("size")), m.group("signed") == "1"
        )
    if not fields:
        raise FormatError(f"event {name.group(1)} lists no fields")
    symbols: dict[str, dict[int, str]] = {}
    fmt = text.split("print fmt:", 1)
    if len(fmt) == 2:
        for m in _SYMBOLIC.finditer(fmt[1]):
            table = {int(k, 0): v for k, v in _PAIR.findall(m.group("body"))}
            if table:
                symbols[m.group("field")] = table
    return EventFormat(name.group(1), int(ident.group(1)), fields, symbols)


@dataclass(frozen=True, slots=True)
class PageLayout:
    """Where the commit word and the event data sit in a ring-buffer page."""

    commit_offset: int
    commit_size: int
    data_offset: int
    page_size: int


# Every kernel since the binary buffer exists (2.6.30) on 64-bit hosts prints this.
DEFAULT_PAGE = PageLayout(commit_offset=8, commit_size=8, data_offset=16, page_size=4096)


def parse_header_page(text: str, page_size: int | None = None) -> PageLayout:
    """events/header_page: "field: local_t commit; offset:8; size:8;" and "field: char data;
    offset:16; size:4080;". The page size is data offset + data size unless the instance's
    buffer_subbuf_size_kb (6.8+) says otherwise."""
    found: dict[str, tuple[int, int]] = {}
    for m in _FIELD.finditer(text):
        fname, _ = _field_name(m.group("decl"))
        found.setdefault(fname, (int(m.group("off")), int(m.group("size"))))
    if "commit" not in found or "data" not in found:
        raise FormatError("header_page has no commit or data field")
    c_off, c_size = found["commit"]
    d_off, d_size = found["data"]
    if c_size not in (4, 8):
        raise FormatError(f"header_page commit word of {c_size} bytes")
    return PageLayout(c_off, c_size, d_off, page_size or d_off + d_size)
