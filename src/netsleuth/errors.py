"""The small exception tree. Malformed packets are data (decode anomalies), not exceptions;
these are for the edges: a file that is not a capture, a missing privilege."""

from __future__ import annotations


class NetsleuthError(Exception):
    """Base of every error netsleuth raises on purpose."""

    exit_code = 1


class InputError(NetsleuthError):
    """Unusable input: the CLI prints the message on one line and exits 2."""

    exit_code = 2

    def __init__(self, source: str, problem: str, *, offset: int | None = None) -> None:
        self.source = source
        self.problem = problem
        self.offset = offset
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{source}: {problem}{where}")


class NotACaptureError(InputError):
    """The file's first bytes are no pcap, pcapng or gzip magic."""


class FacilityError(NetsleuthError):
    """A privilege or kernel facility is missing: exit 3 with what to do."""

    exit_code = 3
