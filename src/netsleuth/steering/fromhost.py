"""A NicModel from a real device's RSS setup (sources.ethtool.read_rss), pure."""

from __future__ import annotations

from dataclasses import replace

from netsleuth.sources.ethtool import ETH_RSS_HASH_TOP, HostRss, l4_flow_types
from netsleuth.steering.model import NicModel
from netsleuth.steering.toeplitz import MODEL_KEY_BYTES


class NoModelError(Exception):
    """The device answers but has nothing to spread packets with."""


def nic_from_rss(rss: HostRss, base: NicModel) -> tuple[NicModel, list[str]]:
    """Rings, key, indirection table and the flow types hashed with ports from the device;
    the parse depth (--nic outer/inner) stays the user's: no ioctl reports it."""
    notes = list(rss.notes)
    if not rss.indir and not rss.key and (rss.rings is None or rss.rings <= 1):
        raise NoModelError(
            f"{rss.device} has {rss.rings or 'no'} RX ring(s) and no RSS indirection table "
            "or key: every packet lands in one queue, nothing to model. Model a NIC with "
            "--queues/--key/--l4 instead"
        )
    if rss.hfunc and rss.hfunc != ETH_RSS_HASH_TOP:
        notes.append(f"hash function bits {rss.hfunc:#x} are not Toeplitz; modelled as Toeplitz")
    key = rss.key
    if key and len(key) < MODEL_KEY_BYTES:
        notes.append(
            f"a {len(key)}-byte key is too short to model (IPv6 with ports needs "
            f"{MODEL_KEY_BYTES}): the default key is used"
        )
        key = b""
    queues = rss.rings if rss.rings else (max(rss.indir) + 1 if rss.indir else base.queues)
    nic = replace(
        base,
        queues=queues,
        key=key or base.key,
        indir=tuple(rss.indir),
        l4=l4_flow_types(rss.fields) if rss.fields else base.l4,
    )
    return nic, notes
