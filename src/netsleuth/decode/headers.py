"""Fixed headers as declared tables of fields (big-endian, RFC field names), read with
ByteViews.header(): one row copy per packet, then each field is a view."""

from __future__ import annotations

import numpy as np

# IEEE 802.3 clause 3.1.1: destination, source, type/length.
ETHERNET = np.dtype([("dst", "V6"), ("src", "V6"), ("type", ">u2")])

# RFC 791 section 3.1 (options follow, per IHL).
IPV4 = np.dtype(
    [
        ("ver_ihl", "u1"),
        ("tos", "u1"),
        ("total_length", ">u2"),
        ("identification", ">u2"),
        ("flags_fragment", ">u2"),
        ("ttl", "u1"),
        ("protocol", "u1"),
        ("checksum", ">u2"),
        ("src", ">u4"),
        ("dst", ">u4"),
    ]
)

# RFC 9293 section 3.1 (options follow, per data offset).
TCP = np.dtype(
    [
        ("sport", ">u2"),
        ("dport", ">u2"),
        ("seq", ">u4"),
        ("ack", ">u4"),
        ("offset_flags", ">u2"),
        ("window", ">u2"),
        ("checksum", ">u2"),
        ("urgent", ">u2"),
    ]
)

# RFC 768.
UDP = np.dtype([("sport", ">u2"), ("dport", ">u2"), ("length", ">u2"), ("checksum", ">u2")])

# RFC 8200 section 3.
IPV6 = np.dtype(
    [
        ("ver_tc_flow", ">u4"),
        ("payload_length", ">u2"),
        ("next_header", "u1"),
        ("hop_limit", "u1"),
        ("src", "u1", (16,)),
        ("dst", "u1", (16,)),
    ]
)
