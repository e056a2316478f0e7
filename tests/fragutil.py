"""Shared by the reassembly and fragment tests: the Sturges/Novak overlap test pattern
(Novak, "Target-Based Fragmentation Reassembly", 2005), and random interleaving of
fragment trains."""

from __future__ import annotations

import random
from typing import TypeVar

T = TypeVar("T")


def interleave(trains: list[list[T]], rng: random.Random) -> list[T]:
    """The trains' items interleaved at random, each train's own order kept (the lists
    are emptied)."""
    out: list[T] = []
    while any(trains):
        k = rng.randrange(len(trains))
        if trains[k]:
            out.append(trains[k].pop(0))
    return out


# (letter, length, offset) in arrival order; only Q has MF=0. Blocks are 8 bytes.
PATTERN = [
    ("A", 24, 0),
    ("B", 16, 32),
    ("C", 24, 48),
    ("D", 8, 80),
    ("E", 16, 104),
    ("F", 24, 120),
    ("G", 16, 144),
    ("H", 16, 160),
    ("I", 8, 176),
    ("J", 32, 8),
    ("K", 24, 48),
    ("L", 24, 72),
    ("M", 24, 96),
    ("N", 8, 128),
    ("O", 8, 152),
    ("P", 8, 160),
    ("Q", 16, 176),
]
