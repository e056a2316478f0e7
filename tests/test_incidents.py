"""The incident captures the demo builds, checked against the incident write-ups."""

from __future__ import annotations

from netsleuth.capture import RecordBatch
from netsleuth.craft import incidents
from netsleuth.decode import L2, Tunnel, decode
from tests.decodeutil import addr

# Frame 2 of the port-mirror capture in shared/incidents/ulb4-dpdk-tx-hang.zh.md (hex dump
# under "Frame 2: 106 bytes on wire"). The write-up's dump shows the inner IPv4 header's
# first byte as "15"; its own Wireshark decode beside it says version 4, header length 20
# bytes, i.e. 0x45, which is used here. Both IPv4 checksums (0x5d8a, 0x2b5e) are the
# write-up's, so every other byte is as captured in production.
INCIDENT1_FRAME2 = bytes.fromhex(
    "82eef555ce2860def32a4f7c8100000a0800450000588 0a800003a2f5d8aac1f8dc3ac14bc4d2000"
    "6558005c6dfc6c92bfa1779cfaffffffffff080045000014586600af34062b5e1b128d046a4bf00f".replace(
        " ", ""
    )
) + bytes(26)


def test_incident1_fragment_frame_is_byte_identical_to_the_production_capture() -> None:
    frames = incidents.incident1_poison_fragment()
    assert frames[-1][1] == INCIDENT1_FRAME2
    assert len(frames[-2][1]) == 1480  # the first fragment's frame length in the write-up


def test_incident1_decodes_through_vlan_gre_teb_to_the_empty_fragment() -> None:
    frames = incidents.incident1_poison_fragment()
    t = decode(RecordBatch.from_packets([f for _, f in frames]))
    last = t.n - 1
    assert int(t.tunnel[last]) == Tunnel.GRE and int(t.gre_proto[last]) == 0x6558
    assert int(t.vlan1[last]) == 10 and int(t.gre_key[last]) == 0x005C6DFC
    assert addr(t.inner, last) == ("27.18.141.4", "106.75.240.15")
    assert (int(t.inner.tot_len[last]), int(t.inner.frag_off[last])) == (20, 1400)
    assert int(t.inner.flags[last]) == 0 and bool(t.inner.is_frag[last])
    assert (int(t.inner.frag_off[last - 1]), int(t.inner.flags[last - 1])) == (0, 1)
    assert int(t.inner.tot_len[last - 1]) == 1420


def test_incident2_bpdus_are_8023_llc_sap_42() -> None:
    frames = incidents.incident2_stp_llc(seconds=4)
    t = decode(RecordBatch.from_packets([f for _, f in frames]))
    llc = [i for i in range(t.n) if int(t.l2[i]) == L2.IEEE8023]
    assert len(llc) == 2
    assert all(int(t.llc_dsap[i]) == 0x42 and int(t.stp_version[i]) == 2 for i in llc)


def test_incident3_many_inner_flows_few_outer() -> None:
    frames = incidents.incident3_pptp(flows=300, packets_per_flow=2)
    t = decode(RecordBatch.from_packets([f for _, f in frames]))
    outer = {addr(t.outer, i) for i in range(t.n)}
    inner = {(addr(t.inner, i), int(t.inner.sport[i])) for i in range(t.n)}
    assert len(outer) == 1 and len(inner) == 300
    assert {int(k) for k in t.gre_key} == {7, 9}  # two PPTP calls
    assert {int(x) for x in t.tunnel} == {Tunnel.PPTP}
