"""Decode in-memory frames and read back one packet's fields."""

from __future__ import annotations

import ipaddress

from netsleuth.capture import RecordBatch
from netsleuth.decode import ANOMALY_IDS, PacketTable, decode
from netsleuth.decode.table import Layer


def dec(
    frames: list[bytes], *, linktype: int = 1, wirelen: list[int] | None = None, depth: int = 3
) -> PacketTable:
    return decode(
        RecordBatch.from_packets(frames, linktype=linktype, wirelen=wirelen), tunnel_depth=depth
    )


def one(frame: bytes, *, linktype: int = 1, depth: int = 3) -> PacketTable:
    return dec([frame], linktype=linktype, depth=depth)


def addr(layer: Layer, i: int = 0) -> tuple[str, str]:
    if layer.ver[i] == 4:
        return (
            str(ipaddress.IPv4Address(int(layer.src4[i]))),
            str(ipaddress.IPv4Address(int(layer.dst4[i]))),
        )
    return (
        str(ipaddress.IPv6Address(layer.src6[i].tobytes())),
        str(ipaddress.IPv6Address(layer.dst6[i].tobytes())),
    )


def ports(layer: Layer, i: int = 0) -> tuple[int, int]:
    return int(layer.sport[i]), int(layer.dport[i])


def anomalies(t: PacketTable, i: int = 0) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {"outer": set(), "inner": set()}
    for a, fid in ANOMALY_IDS.items():
        if int(t.anom_outer[i]) >> int(a) & 1:
            out["outer"].add(fid)
        if int(t.anom_inner[i]) >> int(a) & 1:
            out["inner"].add(fid)
    return out


def clean(t: PacketTable, i: int = 0) -> bool:
    return int(t.anom_outer[i]) == 0 and int(t.anom_inner[i]) == 0
