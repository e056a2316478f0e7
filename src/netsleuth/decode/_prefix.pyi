from typing import Any

from numpy.typing import NDArray

STEP_LINK_ETHERNET: int
STEP_ETHERNET: int
STEP_VLAN: int
STEP_IPV4: int
STEP_IPIP: int
STEP_IPV6: int
STEP_IP6: int
STEP_TCP: int
STEP_UDP: int
STEP_GRE: int
STEP_PPP: int
STEP_VXLAN: int
STEP_LINK_RADIOTAP: int
STEP_LINK_IEEE80211: int
STEP_LLC: int
STEP_LINK_SLL: int
STEP_LINK_SLL2: int

def prefix(
    buf: NDArray[Any],
    columns: tuple[NDArray[Any], ...],
    flat: NDArray[Any],
    steps: bytes,
    max_tunnels: int,
    max_steps: int,
    /,
) -> int: ...
