"""What a NIC's RSS parser and the kernel's flow dissector see past the headers that sit
between the link layer and the first IP header (PacketTable.shim, set by the decoders).

Flow dissector (net/core/flow_dissector.c, __skb_flow_dissect): ETH_P_PPP_SES is stepped
over to PPP_IP / PPP_IPV6 (FLOW_DISSECT_RET_PROTO_AGAIN): the IP behind PPPoE is keyed.
ETH_P_MPLS_UC/MC go to __skb_flow_dissect_mpls, which keys an entropy label at most and
ends (FLOW_DISSECT_RET_OUT_GOOD): the IP behind MPLS is never read. NSH (0x894F), VN-Tag
(0x8926), E-Tag (0x893F), PBB (0x88E7) and MACsec (0x88E5, decrypted later by the macsec
device, after RPS on the lower one) have no case: FLOW_DISSECT_RET_OUT_BAD, no
addresses. Whatever is not keyed hashes alike (__flow_hash_from_keys over the same empty
keys): one CPU for all of it. UDP payloads are never entered: Teredo, GTP-U, L2TP and
GRE-in-UDP are keyed by their outer UDP 5-tuple (Tunnel kinds the dissector model does not
enter, steering/model.py).

A NIC's RSS parser (Microsoft RSS, the common hardware behaviour) knows Ethernet, VLAN tags,
IPv4/IPv6 and TCP/UDP: behind any of these shims it finds no IP header, so no RSS hash
type applies and the packet takes indirection entry 0's queue. (Some NICs parse PPPoE or
GTP-U with extra firmware, e.g. Intel DDP profiles; not modelled.)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.table import PacketTable, Shim
from netsleuth.steering.fields import FIELD_NAMES, Fields

ALL = Shim.PPPOE | Shim.MPLS | Shim.NSH | Shim.VNTAG | Shim.ETAG | Shim.PBB | Shim.MACSEC
NIC_BLIND = ALL
DISSECTOR_BLIND = ALL & ~Shim.PPPOE


def hidden(t: PacketTable, blind: Shim) -> NDArray[np.bool_]:
    """Packets whose IP header sits behind a shim that the parser does not step over."""
    out: NDArray[np.bool_] = (t.shim & np.uint8(blind)) != 0
    return out


def without_ip(f: Fields, rows: NDArray[np.bool_]) -> Fields:
    """`f` with no IP layer for `rows` (a new Fields: the cached one stays as it is)."""
    if not rows.any():
        return f
    cols = {k: np.where(rows, 0, getattr(f, k)).astype(getattr(f, k).dtype) for k in FIELD_NAMES}
    return Fields(**cols)
