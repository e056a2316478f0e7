"""lab's review fixes that need no namespace: the rps_cpus mask as the kernel parses it,
consume_skb before Linux 6.3, device names within IFNAMSIZ, bounds on what a replay holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from netsleuth.capture.writer import write_pcap
from netsleuth.errors import FacilityError, InputError
from netsleuth.lab import replay
from netsleuth.lab.frames import Needs, VxlanNeed
from netsleuth.lab.replay import MAX_LIMIT, MAX_VXLAN, Options, Record, read_capture
from netsleuth.lab.sandbox import Sandbox, Tunnel, rps_mask
from netsleuth.lab.trace import Event, Tracer

# bitmap_parse (lib/bitmap-str.c) takes comma-separated groups of at most 8 hex digits,
# most significant first, as `cat rps_cpus` prints them on a host with that many CPUs.
MASKS = {
    1: "00000001",
    33: "00000001,ffffffff",
    64: "ffffffff,ffffffff",
    65: "00000001,ffffffff,ffffffff",
    200: "000000ff," + ",".join(["ffffffff"] * 6),
}


@pytest.mark.parametrize("cpus", sorted(MASKS))
def test_rps_mask_is_32_bit_groups(cpus: int) -> None:
    text = rps_mask(list(range(cpus)))
    assert text == MASKS[cpus]
    assert all(len(g) <= 8 for g in text.split(","))
    assert int(text.replace(",", ""), 16) == (1 << cpus) - 1


def test_rps_mask_of_sparse_cpus() -> None:
    assert rps_mask([0, 35]) == "00000008,00000001"
    assert rps_mask([40]) == "00000100,00000000"


def test_rps_write_failure_says_what_the_command_said() -> None:
    """`ip netns exec` into a namespace that does not exist: its own stderr is the error."""
    sb = Sandbox(pid=2**31 - 7)  # never opened: nothing is created
    with pytest.raises(FacilityError, match="rps_cpus") as err:
        sb._write_rps("00000001")
    assert "iproute2" not in str(err.value)
    assert "netsleuth-2147483641-b" in str(err.value) or "ermission" in str(err.value)


FORMATS = Path(__file__).parent / "fixtures" / "tracefs"


class FormatDir:
    """A tracefs stand-in for Tracer._learn: events/<system>/<event>/format from a file."""

    def __init__(self, root: Path, formats: dict[str, str]) -> None:
        self.root = root
        for event, name in formats.items():
            d = root / "events" / "skb" / event
            d.mkdir(parents=True)
            (d / "format").write_text((FORMATS / name).read_text())

    def event_dir(self, system: str, event: str) -> Path:
        return self.root / "events" / system / event


def consume_record(event_id: int, skb: int, location: int | None) -> bytes:
    loc = b"" if location is None else location.to_bytes(8, "little")
    return b"".join(
        (event_id.to_bytes(2, "little"), bytes(2), (4242).to_bytes(4, "little")),
    ) + b"".join((skb.to_bytes(8, "little"), loc))


def test_consume_skb_before_6_3_has_no_location(tmp_path: Path) -> None:
    """Linux before 6.3 records only skbaddr in consume_skb: the lab decodes it with
    location 0 and says once what is missing, instead of a KeyError."""
    fs = FormatDir(tmp_path, {"consume_skb": "consume_skb-6.2.format"})
    # FormatDir stands in for Tracefs: the event format files are all the Tracer reads here.
    tracer = Tracer(fs, 4242)  # type: ignore[arg-type]  # only event_dir is used
    tracer._learn("skb", "consume_skb")
    assert tracer.notes == [
        "this kernel's consume_skb records no location (added in 6.3): where a frame was "
        "consumed is not named"
    ]
    ev = tracer._event(consume_record(1407, 0xFFFF888012345600, None))
    assert ev == Event("consume", 0xFFFF888012345600, location=0)


def test_consume_skb_since_6_3_keeps_its_location(tmp_path: Path) -> None:
    fs = FormatDir(tmp_path, {"consume_skb": "consume_skb-6.18.format"})
    tracer = Tracer(fs, 4242)  # type: ignore[arg-type]
    tracer._learn("skb", "consume_skb")
    assert tracer.notes == []
    event_id = next(iter(tracer.decoders))
    ev = tracer._event(consume_record(event_id, 0xFFFF888012345600, 0xFFFFFFFF81234567))
    assert ev == Event("consume", 0xFFFF888012345600, location=0xFFFFFFFF81234567)


class FakeSandbox:
    """What setup_receiver calls on a sandbox, recorded (no namespace is made)."""

    if_b = "labXb"
    idx_b = 2

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.tunnels: list[tuple[str, str]] = []

    def add_addresses(self, ifname: str, addresses: list[str]) -> int:
        return len(addresses)

    def add_tunnel(self, kind: str, suffix: str, **attrs: object) -> Tunnel:
        self.tunnels.append((kind, suffix))
        return Tunnel(kind, f"lab4194303{suffix}", True)

    def listen(self, proto: str, port: int) -> None:
        raise AssertionError("no --listen given")


def test_vxlan_devices_are_capped_with_a_note() -> None:
    needs = Needs()
    for vni in range(MAX_VXLAN + 24):
        needs.vxlan[VxlanNeed(vni, 4789, "192.0.2.80")] = {}
    sb = FakeSandbox()
    # FakeSandbox stands in for a Sandbox: it records what setup_receiver asks of it.
    replay.setup_receiver(sb, needs, Options())  # type: ignore[arg-type]
    assert [s for k, s in sb.tunnels if k == "vxlan"] == [f"x{i}" for i in range(MAX_VXLAN)]
    assert all(len(f"lab4194303{s}") <= 15 for _, s in sb.tunnels)
    assert any(f"{MAX_VXLAN + 24} VXLAN" in n and f"first {MAX_VXLAN}" in n for n in sb.notes)


def test_a_name_past_ifnamsiz_is_a_note_not_a_traceback() -> None:
    """The largest pid (PID_MAX_LIMIT - 1: 7 digits) with a 6-character suffix is 16
    characters: the tunnel is not made and says why; no netlink call is reached."""
    sb = Sandbox(pid=4194303)
    t = sb.add_tunnel("vxlan", "x12345")
    assert not t.created and "IFNAMSIZ" in t.note
    assert sb.tunnels == [t]
    assert len(sb.device_name("v4094")) == 15


def test_limit_has_an_upper_bound(tmp_path: Path) -> None:
    cap = tmp_path / "one.pcap"
    with cap.open("wb") as fh:
        write_pcap(fh, [(0, bytes(60))])
    with pytest.raises(InputError, match=f"give 1 to {MAX_LIMIT:,}"):
        next(read_capture(str(cap), Options(limit=MAX_LIMIT + 1)))
    assert next(read_capture(str(cap), Options(limit=MAX_LIMIT))).frame == 1


def test_held_frames_are_capped_and_read_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    """Big frames stop at MAX_HELD bytes with a note, and the records after the stop are
    never read (the capture is not materialised first)."""
    monkeypatch.setattr(replay, "MAX_HELD", 1 << 20)
    size = 60_000
    frame = b"".join((bytes(6), bytes(6), b"\x08\x00", bytes(size - 14)))
    read = []

    def records() -> Iterator[Record]:
        for i in range(1, 1000):
            read.append(i)
            yield Record(i, 1, frame)

    notes: list[str] = []
    got = replay._prepare(records(), bytes(6), Needs(), notes)
    kept = (1 << 20) // size
    assert len(got) == kept and read == list(range(1, kept + 2))
    assert notes and f"stopped before frame {kept + 1}" in notes[0]
