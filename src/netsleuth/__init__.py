"""netsleuth: find where packets die and why receive load piles onto a few CPUs."""

__version__ = "0.1.0"
