"""Capture reading: files (pcap, pcapng, snoop, ERF; gzip) and stdin into streamed
RecordBatches."""

from __future__ import annotations

from netsleuth.capture.batch import RecordBatch
from netsleuth.capture.chunks import CHUNK_BYTES, ReadIssue
from netsleuth.capture.erf import ErfReader
from netsleuth.capture.pcap import PcapReader
from netsleuth.capture.pcapng import PcapngReader, first_section_fault
from netsleuth.capture.snoop import SnoopReader
from netsleuth.capture.source import open_source
from netsleuth.errors import InputError

CaptureReader = PcapReader | PcapngReader | SnoopReader | ErfReader

__all__ = ["CaptureReader", "ReadIssue", "RecordBatch", "open_capture"]


def open_capture(path: str, *, chunk_bytes: int = CHUNK_BYTES) -> CaptureReader:
    """Open a capture file (or "-" for stdin); raises InputError if it is not one."""
    sniffed = open_source(path)
    if sniffed.kind == "pcap":
        return PcapReader(sniffed.source, compressed=sniffed.compressed, chunk_bytes=chunk_bytes)
    if sniffed.kind == "snoop":
        return SnoopReader(sniffed.source, compressed=sniffed.compressed)
    if sniffed.kind == "erf":
        return ErfReader(sniffed.source, compressed=sniffed.compressed, chunk_bytes=chunk_bytes)
    fault = first_section_fault(sniffed.source.peek(12), chunk_bytes)
    if fault is not None:
        sniffed.source.close()
        raise InputError(sniffed.source.name, fault)
    return PcapngReader(sniffed.source, compressed=sniffed.compressed, chunk_bytes=chunk_bytes)
