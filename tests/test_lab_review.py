"""lab's review fixes that need no namespace: the rps_cpus mask as the kernel parses it,
consume_skb before Linux 6.3, device names within IFNAMSIZ, bounds on what a replay holds."""

from __future__ import annotations

import pytest

from netsleuth.errors import FacilityError
from netsleuth.lab.sandbox import Sandbox, rps_mask

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
