"""Synthetic host readings for doctor tests: the texts a 4-CPU host with a 4-queue ixgbe
eth0 would show, with every counter a parameter, so each rule gets a bundle that triggers
it and a healthy busy one that does not."""

from __future__ import annotations

from dataclasses import dataclass, field

from netsleuth.sources.hostfs import Snapshot

CPUS = 4


@dataclass
class Host:
    processed: list[int] = field(default_factory=lambda: [0] * CPUS)
    dropped: list[int] = field(default_factory=lambda: [0] * CPUS)
    squeeze: list[int] = field(default_factory=lambda: [0] * CPUS)
    rps: list[int] = field(default_factory=lambda: [0] * CPUS)
    net_rx: list[int] = field(default_factory=lambda: [0] * CPUS)
    softirq_ticks: list[int] = field(default_factory=lambda: [0] * CPUS)
    queue_irq_cpu: list[int] = field(default_factory=lambda: [0, 1, 2, 3])
    queue_irqs: list[int] = field(default_factory=lambda: [0] * CPUS)
    queue_packets: list[int] = field(default_factory=lambda: [0] * CPUS)
    dev: dict[str, int] = field(default_factory=dict)
    rps_mask: str = "0"
    ring: tuple[int, int] = (4096, 4096)
    mib: dict[str, int] = field(default_factory=dict)
    backlog: int = 1000
    budget: int = 300

    def snapshot(self) -> Snapshot:
        f: dict[str, str] = {}
        f["proc/sys/kernel/osrelease"] = "5.15.0-91-generic\n"
        f["sys/devices/system/cpu/online"] = f"0-{CPUS - 1}\n"
        f["proc/net/softnet_stat"] = "".join(
            " ".join(
                f"{v & 0xFFFFFFFF:08x}"
                for v in (
                    self.processed[c],
                    self.dropped[c],
                    self.squeeze[c],
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    self.rps[c],
                    0,
                    0,
                    c,
                )
            )
            + "\n"
            for c in range(CPUS)
        )
        head = "".join(f"CPU{c:<8}" for c in range(CPUS))
        f["proc/softirqs"] = (
            f"                    {head}\n"
            "          HI:" + "".join(f"{0:>11}" for _ in range(CPUS)) + "\n"
            "      NET_RX:" + "".join(f"{v:>11}" for v in self.net_rx) + "\n"
        )
        f["proc/stat"] = "cpu  1 2 3 4 5 6 7 0 0 0\n" + "".join(
            f"cpu{c} 100 0 100 1000 0 0 {self.softirq_ticks[c]} 0 0 0\n" for c in range(CPUS)
        )
        lines = [f"           {head}"]
        for q in range(CPUS):
            counts = ["0"] * CPUS
            counts[self.queue_irq_cpu[q]] = str(self.queue_irqs[q])
            lines.append(
                f" {40 + q}:  "
                + "  ".join(f"{c:>9}" for c in counts)
                + f"  IR-PCI-MSI {524288 + q}-edge      eth0-TxRx-{q}"
            )
        f["proc/interrupts"] = "\n".join(lines) + "\n"
        for q in range(CPUS):
            f[f"proc/irq/{40 + q}/smp_affinity_list"] = f"{self.queue_irq_cpu[q]}\n"
            f[f"sys/class/net/eth0/queues/rx-{q}/rps_cpus"] = self.rps_mask + "\n"
        stats = {
            "rx_packets": sum(self.queue_packets),
            "rx_dropped": 0,
            "rx_nohandler": 0,
            "rx_missed_errors": 0,
            "rx_fifo_errors": 0,
            "rx_over_errors": 0,
            "rx_crc_errors": 0,
            **self.dev,
        }
        for k, v in stats.items():
            f[f"sys/class/net/eth0/statistics/{k}"] = f"{v}\n"
        f["ethtool/eth0/statistics"] = "NIC statistics:\n" + "".join(
            f"     rx_queue_{q}_packets: {v}\n     rx_queue_{q}_bytes: {v * 100}\n"
            for q, v in enumerate(self.queue_packets)
        )
        f["ethtool/eth0/ring"] = (
            "Ring parameters for eth0:\nPre-set maximums:\nRX:\t\t"
            f"{self.ring[1]}\nRX Mini:\tn/a\nRX Jumbo:\tn/a\nTX:\t\t4096\n"
            f"Current hardware settings:\nRX:\t\t{self.ring[0]}\nRX Mini:\tn/a\n"
            "RX Jumbo:\tn/a\nTX:\t\t512\n"
        )
        f["proc/sys/net/core/netdev_max_backlog"] = f"{self.backlog}\n"
        f["proc/sys/net/core/netdev_budget"] = f"{self.budget}\n"
        f["proc/sys/net/core/netdev_budget_usecs"] = "2000\n"
        ip = {"ReasmTimeout": 0, "ReasmReqds": 0, "ReasmFails": 0, "InDiscards": 0}
        tcpext = {"ListenOverflows": 0, "ListenDrops": 0}
        for k, v in self.mib.items():
            (ip if k in ip else tcpext)[k] = v
        f["proc/net/snmp"] = (
            "Ip: " + " ".join(ip) + "\nIp: " + " ".join(map(str, ip.values())) + "\n"
        )
        f["proc/net/netstat"] = (
            "TcpExt: "
            + " ".join(tcpext)
            + "\nTcpExt: "
            + " ".join(map(str, tcpext.values()))
            + "\n"
        )
        return Snapshot(f)


def busy(scale: int = 1) -> Host:
    """A healthy host under load: 800k packets/s spread over 4 queues and CPUs."""
    n = 200_000 * scale
    return Host(
        processed=[n] * CPUS,
        net_rx=[n // 20] * CPUS,
        softirq_ticks=[10 * scale] * CPUS,
        queue_irqs=[n // 20] * CPUS,
        queue_packets=[n] * CPUS,
        dev={"rx_packets": 4 * n},
    )
