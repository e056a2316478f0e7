"""Decoding what real networks carry (issue 12): PPTP acknowledgments, the link types users
capture with, and the encapsulations of access, carrier and data-centre networks. Frames are
built with netsleuth.craft (tests/realframes.py) and checked against scapy's bytes here and
against tshark's decoding in tests/test_tshark_diff.py."""

from __future__ import annotations

import numpy as np
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether
from scapy.layers.ppp import GRE_PPTP
from scapy.packet import raw

from netsleuth.capture import RecordBatch
from netsleuth.decode import Tunnel, decode
from netsleuth.decode.table import IP_FIELDS
from tests import realframes as rf
from tests.decodeutil import anomalies, clean, dec


def test_pptp_acknowledgment_alone_is_valid() -> None:
    ours = rf.pptp_ack(4242, 7, pad=False)
    theirs = (
        Ether() / IP(src=rf.A, dst=rf.B) / GRE_PPTP(call_id=4242, acknum_present=1, ack_number=7)
    )
    assert ours[14:] == raw(theirs)[14:]
    t = dec([ours, rf.pptp_ack(9, 8, pad=True)])  # on Ethernet: padded to 60 bytes
    for i in (0, 1):
        assert clean(t, i), anomalies(t, i)
        assert (int(t.tunnels[i]), int(t.tunnel[i])) == (1, Tunnel.PPTP)
    assert [int(k) for k in t.gre_key] == [4242, 9]
    # Nothing after the GRE header is decoded: no PPP, no inner IP.
    assert [int(p) for p in t.ppp_proto] == [0, 0] and [int(n) for n in t.nip] == [1, 1]


def test_pptp_payload_length_bounds_the_ppp_frame() -> None:
    t = dec([rf.pptp_padded()])
    assert clean(t), anomalies(t)
    assert (int(t.inner.ver[0]), int(t.inner.dport[0]), int(t.inner.l4_len[0])) == (4, 2, 9)
    # The GRE payload ends where its length says, not at the frame's padding.
    assert int(t.end[0]) == 14 + 20 + 12 + 4 + 20 + 9


def test_compiled_prefix_pass_equals_numpy_decoders_on_these_frames() -> None:
    for name, (linktype, frames) in rf.captures().items():
        batch = RecordBatch.from_packets(frames, linktype=linktype)
        a, b = decode(batch, prefix=True), decode(batch, prefix=False)
        for col, v in vars(a).items():
            if isinstance(v, np.ndarray):
                assert np.array_equal(v, getattr(b, col)), (name, col)
        for layer in ("outer", "inner_raw"):
            for f in IP_FIELDS:
                x, y = getattr(getattr(a, layer), f), getattr(getattr(b, layer), f)
                assert np.array_equal(x, y), (name, layer, f)
