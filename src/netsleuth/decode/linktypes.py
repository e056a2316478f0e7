"""Names of pcap/pcapng link types (tcpdump.org "Link-layer header types"), to name one that
netsleuth does not decode instead of showing a bare number. The decoded ones are whatever
the registry binds in NS.LINKTYPE (decoded_linktypes)."""

from __future__ import annotations

from netsleuth.decode.registry import REGISTRY
from netsleuth.decode.table import NS

NAMES = {
    0: "NULL (BSD loopback)",
    1: "ETHERNET",
    3: "AX25",
    6: "IEEE802_5 (Token Ring)",
    7: "ARCNET_BSD",
    8: "SLIP",
    9: "PPP",
    10: "FDDI",
    12: "RAW (DLT 12)",
    14: "RAW (DLT 14)",
    50: "PPP_HDLC",
    51: "PPP_ETHER (PPPoE, BSD)",
    100: "ATM_RFC1483",
    101: "RAW",
    104: "C_HDLC (Cisco HDLC)",
    105: "IEEE802_11 (Wi-Fi)",
    106: "ATM_CLIP",
    107: "FRELAY (Frame Relay)",
    108: "LOOP (OpenBSD loopback)",
    113: "LINUX_SLL",
    114: "LTALK",
    117: "PFLOG",
    119: "IEEE802_11_PRISM",
    122: "IP_OVER_FC",
    123: "SUNATM",
    127: "IEEE802_11_RADIOTAP",
    129: "ARCNET_LINUX",
    138: "APPLE_IP_OVER_IEEE1394",
    139: "MTP2_WITH_PHDR",
    140: "MTP2",
    141: "MTP3",
    142: "SCCP",
    143: "DOCSIS",
    144: "LINUX_IRDA",
    147: "USER0",
    163: "IEEE802_11_AVS",
    165: "BACNET_MS_TP",
    166: "PPP_PPPD",
    169: "GPRS_LLC",
    177: "LINUX_LAPD",
    187: "BLUETOOTH_HCI_H4",
    189: "USB_LINUX",
    192: "PPI",
    195: "IEEE802_15_4_WITHFCS",
    196: "SITA",
    197: "ERF",
    201: "BLUETOOTH_HCI_H4_WITH_PHDR",
    202: "AX25_KISS",
    204: "PPP_WITH_DIR",
    209: "IPMB_LINUX",
    215: "IEEE802_15_4_NONASK_PHY",
    220: "USB_LINUX_MMAPPED",
    224: "FC_2",
    226: "IPNET",
    227: "CAN_SOCKETCAN",
    228: "IPV4",
    229: "IPV6",
    230: "IEEE802_15_4_NOFCS",
    231: "DBUS",
    235: "DVB_CI",
    239: "NFLOG",
    240: "NETANALYZER",
    242: "IPOIB",
    247: "INFINIBAND",
    248: "SCTP",
    249: "USBPCAP",
    251: "BLUETOOTH_LE_LL",
    252: "WIRESHARK_UPPER_PDU",
    253: "NETLINK",
    254: "BLUETOOTH_LINUX_MONITOR",
    256: "BLUETOOTH_LE_LL_WITH_PHDR",
    258: "PKTAP",
    259: "EPON",
    271: "VSOCK",
    272: "NORDIC_BLE",
    274: "ETHERNET_MPACKET",
    276: "LINUX_SLL2",
    281: "DSA_TAG_BRCM",
    282: "DSA_TAG_BRCM_PREPEND",
    283: "IEEE802_15_4_TAP",
    284: "DSA_TAG_DSA",
    285: "DSA_TAG_EDSA",
}


def describe(linktype: int) -> str:
    """'LINKTYPE_X (n)', or 'link type n' for a number tcpdump.org does not list here."""
    name = NAMES.get(linktype)
    return f"LINKTYPE_{name} ({linktype})" if name else f"link type {linktype}"


def decoded_linktypes() -> list[int]:
    # LINKTYPE_ERF is bound only to tell an ERF record's provenance (META) records from the
    # ERF types that are not decoded (decode/erfmeta.py): it is not a link decoded.
    return sorted(b.key for b in REGISTRY.bindings if b.ns == NS.LINKTYPE and b.key != 197)
