"""Link-layer findings: 802.3/LLC frames (incident 2), runts, and non-zero padding."""

from __future__ import annotations

import numpy as np

from netsleuth.checks.frames import FrameTally, kinds_line, most_seen
from netsleuth.decode.table import L2, PacketTable
from netsleuth.findings import Finding
from netsleuth.findings.catalogue import CATALOGUE, catalogue_finding

ETH_MIN = 60  # IEEE 802.3 minimum frame without FCS
ETHERNET_RECORDS = (1, 281, 282, 284, 285)  # LINKTYPE_ETHERNET, LINKTYPE_DSA_TAG_*
SAP_NAMES = {
    0x42: "STP BPDU (SAP 0x42)",
    0xAA: "SNAP (SAP 0xAA)",
    0xE0: "IPX (SAP 0xE0)",
    0xF0: "NetBIOS (SAP 0xF0)",
    0xFE: "ISO network layer (SAP 0xFE)",
}
STP_VERSIONS = {0: "STP", 2: "RSTP", 3: "MSTP", 4: "SPB"}


def _llc_kind(dsap: int, version: int) -> str:
    """What an 802.3 frame carried, by DSAP and (for BPDUs) protocol version (IEEE 802.1Q
    clause 14: 0 STP, 2 RSTP, 3 MSTP, 4 SPB)."""
    if dsap < 0:  # no LLC header decoded: see l2.bad_length / l2.llc_truncated
        return "no LLC header (802.3 length past the frame end, or cut short)"
    if dsap == 0x42 and version >= 0:
        name = STP_VERSIONS.get(version)
        return f"{name} BPDU (SAP 0x42)" if name else f"BPDU version {version} (SAP 0x42)"
    return SAP_NAMES.get(dsap, f"SAP 0x{dsap:02x}")


class LinkLayer:
    """l2.ieee8023_llc, l2.runt, l2.padding_nonzero (outermost frame; padding also for an
    Ethernet frame carried inside a tunnel, where incident 1's 26 zero bytes were)."""

    def __init__(self) -> None:
        self.tally = FrameTally()
        self.kinds: dict[str, int] = {}

    def observe(self, t: PacketTable) -> None:
        # An 802.2 LLC frame on Ethernet, or one a `tcpdump -i any` capture (SLL/SLL2
        # protocol ETH_P_802_2) shows arriving: the same frame reaching the same stack.
        cooked = ((t.l2 == L2.SLL) | (t.l2 == L2.SLL2)) & (t.llc_dsap >= 0) & (t.tunnels == 0)
        llc = (t.l2 == L2.IEEE8023) | cooked
        if llc.any():
            self.tally.add("l2.ieee8023_llc", t.frame[llc])
            code = t.llc_dsap[llc].astype(np.int64) << 8 | (t.stp_version[llc] + 1)
            for c, n in zip(*np.unique(code, return_counts=True), strict=True):
                name = _llc_kind(int(c) >> 8, (int(c) & 0xFF) - 1)
                self.kinds[name] = self.kinds.get(name, 0) + int(n)
        ether = (t.l2 == L2.ETHERNET) | (t.l2 == L2.IEEE8023)
        # The record's wire length is the Ethernet frame's only for LINKTYPE_ETHERNET and
        # the DSA types, whose switch tag is inside the frame on the conduit link
        # (decode/dsa.py); behind a PPI or PKTAP header it is not.
        framed = ether & np.isin(t.batch.linktype, ETHERNET_RECORDS)
        # Not a frame the capture marks as sent by its host: its NIC pads it after the
        # capture point (every ACK a host sends is 54 bytes there). The frame's length
        # without an FCS the record ends in (ERF's, or one its capture declares:
        # PacketTable.fcs), as a capture without FCSs has it.
        runt = framed & (t.frame_len < ETH_MIN) & ~t.sent()
        self.tally.add("l2.runt", t.frame[runt])
        self._padding(t, ether, framed)

    def _padding(self, t: PacketTable, ether: np.ndarray, framed: np.ndarray) -> None:
        # Padding follows the IP packet in a minimum-size frame: bytes between the end of
        # the innermost IP packet and the end of its frame (the captured frame, or the
        # outer IP payload for a tunnelled Ethernet frame, whose length the tunnel says
        # whatever the record's link type). Only 60-byte frames are looked at: a longer
        # one ends in a trailer, not padding. Lengths are the frame's without the FCS a
        # record may end in (PacketTable.fcs): a 64-byte frame on a DAG card's wire, or in
        # a capture declaring its FCS, is 60 bytes of frame, padding included, and its
        # FCS, which is not padding.
        tunnelled = t.nip >= 2
        rows = np.flatnonzero((framed & (t.frame_len == ETH_MIN)) | (ether & tunnelled))
        if rows.shape[0] == 0:
            return
        inner, start, tun = t.inner, t.start[rows], tunnelled[rows]
        ip_end = start + inner.off[rows].astype(np.int64) + inner.tot_len[rows]
        outer_end = start + t.outer.off[rows].astype(np.int64) + t.outer.tot_len[rows]
        frame_end = np.where(tun, outer_end, start + t.frame_caplen[rows])
        # A tunnelled frame's length: from its Ethernet header (14 bytes before its IP).
        frame_len = np.where(tun, frame_end - (start + inner.off[rows] - 14), t.frame_len[rows])
        pad = frame_end - ip_end
        keep = (inner.ver[rows] != 0) & (frame_len == ETH_MIN) & (pad > 0) & (pad <= 46)
        rows, ip_end, pad = rows[keep], ip_end[keep], pad[keep]
        if rows.shape[0] == 0:
            return
        block = t.v.header(ip_end, np.dtype((np.void, 46))).view(np.uint8).reshape(-1, 46)
        within = np.arange(46)[None, :] < pad[:, None]
        nonzero = ((block != 0) & within).any(axis=1)
        self.tally.add("l2.padding_nonzero", t.frame[rows[nonzero]])

    def merge(self, other: LinkLayer, frame_offset: int = 0) -> None:
        self.tally.merge(other.tally, frame_offset)
        for name, n in other.kinds.items():
            self.kinds[name] = self.kinds.get(name, 0) + n

    def findings(self) -> list[Finding]:
        out = []
        for fid, n in self.tally.count.items():
            summary, evidence = None, None
            if fid == "l2.ieee8023_llc":
                kinds = kinds_line(most_seen(self.kinds), str, "kinds")
                summary = f"{CATALOGUE[fid].summary}: {kinds}"
                evidence = {"kinds": dict(sorted(self.kinds.items()))}  # at most ~260
            out.append(
                catalogue_finding(
                    fid,
                    n,
                    tuple(self.tally.frames[fid]),
                    "outer",
                    summary=summary,
                    evidence=evidence,
                )
            )
        return out
