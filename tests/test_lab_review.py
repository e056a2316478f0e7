"""lab's review fixes that need no namespace: the rps_cpus mask as the kernel parses it,
consume_skb before Linux 6.3, device names within IFNAMSIZ, bounds on what a replay holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from netsleuth.errors import FacilityError
from netsleuth.lab.sandbox import Sandbox, rps_mask
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
