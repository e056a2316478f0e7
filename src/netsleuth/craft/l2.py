"""Link layer: Ethernet II, 802.3 + LLC/SNAP, STP BPDUs, 802.1Q/802.1ad tags, MPLS."""

from __future__ import annotations

import struct

ETH_MIN = 60  # minimum Ethernet frame without FCS (IEEE 802.3 clause 4.4.2: 64 with FCS)


def mac(text: str) -> bytes:
    raw = bytes.fromhex(text.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    return raw


def ether(
    payload: bytes,
    ethertype: int,
    *,
    dst: str = "02:00:00:00:00:02",
    src: str = "02:00:00:00:00:01",
) -> bytes:
    """Ethernet II; `ethertype` <= 1500 writes an 802.3 length field instead."""
    return mac(dst) + mac(src) + struct.pack("!H", ethertype) + payload


def ieee8023(
    payload: bytes,
    *,
    dst: str = "01:80:c2:00:00:00",
    src: str = "02:00:00:00:00:01",
    length: int | None = None,
) -> bytes:
    """An 802.3 frame whose type field is the LLC payload length (clause 3.2.6)."""
    n = len(payload) if length is None else length
    return mac(dst) + mac(src) + struct.pack("!H", n) + payload


def pad(frame: bytes, size: int = ETH_MIN, fill: int = 0) -> bytes:
    """Pad to the Ethernet minimum, as a NIC or switch does (the 26 zeros of incident 1)."""
    return frame + bytes([fill]) * max(0, size - len(frame))


def dot1q(payload: bytes, ethertype: int, *, vid: int, pcp: int = 0, dei: int = 0) -> bytes:
    """A VLAN tag's 4 bytes (TCI + next type); put it after an 0x8100 or 0x88a8 type."""
    return struct.pack("!HH", (pcp << 13) | (dei << 12) | (vid & 0x0FFF), ethertype) + payload


def llc(payload: bytes, *, dsap: int, ssap: int, ctrl: int = 0x03) -> bytes:
    return bytes([dsap, ssap, ctrl]) + payload


def snap(payload: bytes, ethertype: int, *, oui: int = 0) -> bytes:
    """LLC AA-AA-03 + SNAP (RFC 1042)."""
    return llc(
        oui.to_bytes(3, "big") + struct.pack("!H", ethertype) + payload, dsap=0xAA, ssap=0xAA
    )


def stp_bpdu(
    *,
    version: int = 2,
    bpdu_type: int = 0x02,
    flags: int = 0x3C,
    root: bytes = b"\x80\x00" + bytes(6),
    cost: int = 0,
    bridge: bytes = b"\x80\x00" + bytes(6),
    port: int = 0x8001,
    msg_age: int = 0,
    max_age: int = 20 * 256,
    hello: int = 2 * 256,
    fwd_delay: int = 15 * 256,
) -> bytes:
    """A configuration/RST BPDU (IEEE 802.1Q-2018 clause 14.3), times in 1/256 s.

    version 0 = STP, 2 = RSTP (adds Version 1 Length = 0), 3 = MSTP (not built here).
    """
    body = struct.pack(
        "!HBBB8sI8sHHHHH",
        0,
        version,
        bpdu_type,
        flags,
        root,
        cost,
        bridge,
        port,
        msg_age,
        max_age,
        hello,
        fwd_delay,
    )
    if version >= 2:
        body += b"\x00"
    return body


def mpls(payload: bytes, labels: list[int], *, ttl: int = 64, tc: int = 0) -> bytes:
    out = b""
    for i, label in enumerate(labels):
        bos = 1 if i == len(labels) - 1 else 0
        out += struct.pack("!I", (label << 12) | (tc << 9) | (bos << 8) | ttl)
    return out + payload
