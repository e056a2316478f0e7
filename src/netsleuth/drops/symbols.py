"""Kernel addresses to `function+offset` with /proc/kallsyms: the sorted text symbols and a
binary search (np.searchsorted), as the kernel's own %pS does.

With kptr_restrict set (or without CAP_SYSLOG) every address in kallsyms reads as zero;
the tracepoint's `location` is then unusable and we say so instead of naming the wrong
function."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# Text symbols only: a drop location is a return address inside a function.
_TEXT_TYPES = frozenset("tTwW")
# GCC clones: __netif_receive_skb_core.constprop.0 is __netif_receive_skb_core.
_CLONE = re.compile(r"\.(?:constprop|isra|part|cold|llvm)\.\d+|\.cold$")


def base_name(function: str) -> str:
    return _CLONE.sub("", function)


@dataclass(frozen=True, slots=True)
class Location:
    function: str  # as kallsyms spells it, "[module]" appended for module symbols
    offset: int

    @property
    def text(self) -> str:
        return f"{self.function}+0x{self.offset:x}"


class Kallsyms:
    def __init__(self, addresses: npt.NDArray[np.uint64], names: list[str]) -> None:
        order = np.argsort(addresses, kind="stable")
        self.addresses = addresses[order]
        self.names = [names[i] for i in order]

    @classmethod
    def from_text(cls, text: str) -> Kallsyms:
        addrs: list[int] = []
        names: list[str] = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) < 3 or parts[1] not in _TEXT_TYPES:
                continue
            try:
                addr = int(parts[0], 16)
            except ValueError:
                continue
            name = parts[2] if len(parts) == 3 else f"{parts[2]} {parts[3]}"
            addrs.append(addr)
            names.append(name)
        return cls(np.array(addrs, dtype=np.uint64), names)

    @property
    def restricted(self) -> bool:
        """Every address zero: kptr_restrict (or no CAP_SYSLOG) hides them."""
        return len(self.names) > 0 and not bool(self.addresses.any())

    def __len__(self) -> int:
        return len(self.names)

    def resolve(self, addresses: npt.NDArray[np.uint64]) -> list[Location | None]:
        """The function containing each address (the last symbol at or below it), or None
        below the first symbol or when the table is unusable."""
        if len(self.names) == 0 or self.restricted:
            return [None] * len(addresses)
        idx = np.searchsorted(self.addresses, addresses, side="right") - 1
        out: list[Location | None] = []
        for a, i in zip(addresses.tolist(), idx.tolist(), strict=True):
            if i < 0 or a == 0:
                out.append(None)
            else:
                out.append(Location(self.names[i], a - int(self.addresses[i])))
        return out
