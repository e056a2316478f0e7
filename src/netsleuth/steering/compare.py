"""steer --compare: the same traffic under each combination of NIC parse depth (outer-only
or inner-aware), RPS off or on, and a kernel before or after GRE v1 dissection, as
max/mean of the per-queue and per-CPU load. All scenarios share one pass over the capture
(each batch is decoded once and fed to every model)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from netsleuth.steering.model import GRE_V1_SINCE, NicModel, RpsModel
from netsleuth.steering.run import SteerResult

OLD_KERNEL = (4, 9)  # the last kernel whose flow dissector does not enter GRE version 1


@dataclass(frozen=True, slots=True)
class Scenario:
    nic: str
    rps: str  # "off" or the kernel version modelled
    queue_max_over_mean: float
    queues_busy: int
    cpu_max_over_mean: float | None
    cpus_busy: int | None

    def to_json(self) -> dict[str, object]:
        return {
            "nic": self.nic,
            "rps": self.rps,
            "queue_max_over_mean": round(self.queue_max_over_mean, 2),
            "queues_busy": self.queues_busy,
            "cpu_max_over_mean": None
            if self.cpu_max_over_mean is None
            else round(self.cpu_max_over_mean, 2),
            "cpus_busy": self.cpus_busy,
        }


Models = list[tuple[NicModel, RpsModel | None]]


def scenarios(nic: NicModel, cpus: tuple[int, ...], kernel: tuple[int, int], seed: int) -> Models:
    """NIC outer/inner x RPS off / a kernel before GRE v1 dissection / a kernel after."""
    new = max(kernel, GRE_V1_SINCE)
    return [
        (replace(nic, parse=parse), RpsModel(k, cpus, seed) if k else None)
        for parse in ("outer", "inner")
        for k in (None, OLD_KERNEL, new)
    ]


def summarize(results: Sequence[SteerResult], cpus: tuple[int, ...]) -> list[Scenario]:
    return [
        Scenario(
            r.nic.parse,
            "off" if r.rps is None else f"Linux {r.rps.kernel[0]}.{r.rps.kernel[1]}",
            r.queues.max_over_mean(),
            int((r.queues.packets > 0).sum()),
            None if r.cpus is None else r.cpus.max_over_mean(),
            None if r.cpus is None else int((r.cpus.packets[list(cpus)] > 0).sum()),
        )
        for r in results
    ]
