"""`netsleuth steer`: per-queue (RSS) and per-CPU (RPS) receive load predicted for the
captures, the findings that explain it, and with --compare the what-if scenarios."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netsleuth.cliutil import stdout_console
from netsleuth.commands.common import (
    Progress,
    cpu_list,
    kernel_version,
    print_json,
    say,
    write_html,
)
from netsleuth.errors import InputError
from netsleuth.findings.select import fail_exit

if TYPE_CHECKING:
    from netsleuth.steering.compare import Scenario
    from netsleuth.steering.model import NicModel, RpsModel
    from netsleuth.steering.run import Models, SteerResult


@dataclass(frozen=True)
class Options:
    captures: tuple[str, ...]
    fmt: str
    fail_on: str | None
    queues: int
    parse: str
    nic_pptp: bool
    key: str
    l4: str
    kernel: str | None
    rps_cpus: str | None
    seed: int
    from_host: str | None
    compare: bool
    html_path: str | None
    workers: int | None  # None: the usable CPUs (steering/parallel.py)
    dask_address: str | None  # --dask: the jobs run on a Dask cluster (netsleuth.cluster)


@dataclass
class SteerReport:
    """The configured model's result, the what-if rows (--compare), and the options the
    JSON reports its configuration from."""

    opts: Options
    nic: NicModel
    rps: RpsModel | None
    result: SteerResult
    whatif: list[Scenario] | None = None

    def to_json(self) -> dict[str, Any]:
        from netsleuth.report.jsonout import document
        from netsleuth.steering.run import copies_note, sent_note

        o, nic, rps, result = self.opts, self.nic, self.rps, self.result
        extra: dict[str, Any] = {
            "inputs": [i.to_json() for i in result.inputs],
            "config": {
                "nic": {
                    "queues": nic.queues,  # the device's ring count with --from-host
                    "parse": o.parse,
                    "pptp": o.nic_pptp,
                    "key": nic.key.hex() if o.from_host else o.key,
                    "l4": sorted(nic.l4),
                    "indirection": list(nic.indir) if nic.indir else "i % queues",
                    "from_host": o.from_host,
                },
                "rps": None
                if rps is None
                else {
                    "kernel": f"{rps.kernel[0]}.{rps.kernel[1]}",
                    "cpus": list(rps.cpus),
                    "seed": o.seed,
                },
            },
            "rss": {
                "queues": [
                    {"queue": i, "packets": int(p), "bytes": int(b)}
                    for i, (p, b) in enumerate(
                        zip(result.queues.packets, result.queues.bytes, strict=True)
                    )
                ],
                "max_over_mean": round(result.queues.max_over_mean(), 3),
                "cv": round(result.queues.cv(), 3),
                "distinct_hashes": result.rss_keys,
            },
            "flows": result.flows_json(),
            # Left out of every count above: RSS and RPS steer received packets only.
            "sent": {"packets": result.sent[0], "bytes": result.sent[1]},
            # And a cooked capture's copies of a received packet from a second device.
            "copies": {"packets": result.copies[0], "bytes": result.copies[1]},
            "notes": [
                "RFS is not modelled",
                "the kernel's RPS hash secret is random per boot: modelled with --seed",
                *([sent_note(result.sent[0])] if result.sent[0] else []),
                *([copies_note(result.copies[0])] if result.copies[0] else []),
            ],
        }
        if rps is not None and result.cpus is not None:
            extra["rps"] = {
                "cpus": [
                    {
                        "cpu": c,
                        "packets": int(result.cpus.packets[c]),
                        "bytes": int(result.cpus.bytes[c]),
                    }
                    for c in rps.cpus
                ],
                "max_over_mean": round(result.cpus.max_over_mean(), 3),
                "cv": round(result.cpus.cv(), 3),
                "distinct_hashes": result.rps_keys,
            }
        if self.whatif is not None:
            extra["compare"] = [row.to_json() for row in self.whatif]
        return document("steer", result.findings, **extra)


def nic_model(opts: Options) -> NicModel:
    """The modelled NIC: the options', or with --from-host the device's own."""
    from netsleuth.steering.model import L4_FLOWS, NicModel
    from netsleuth.steering.toeplitz import parse_key

    # '' is no flow type hashed with ports, as `ethtool -N DEV rx-flow-hash tcp4 sd` for each.
    l4 = frozenset(x.strip() for x in opts.l4.split(",") if x.strip())
    unknown = sorted(l4 - L4_FLOWS.keys())
    if unknown:  # 'tcp' or 'TCP4' was ignored: no flow type hashed its ports
        raise InputError(
            "--l4", f"{','.join(unknown)[:40]!r}: the flow types are {', '.join(sorted(L4_FLOWS))}"
        )
    try:
        nic = NicModel(
            queues=opts.queues,
            parse=opts.parse,
            pptp=opts.nic_pptp,
            key=parse_key(opts.key),
            l4=l4,
        )
    except ValueError as err:
        raise InputError("--key", str(err)) from err
    if opts.from_host is not None:  # '' is refused as a device name, not read as left out
        from netsleuth.cliutil import check_ifname

        check_ifname(opts.from_host, "--from-host")
        nic, host_notes = nic_from_host(opts.from_host, nic)
        for note in host_notes:
            say(f"netsleuth: {opts.from_host}: {note}")
    return nic


def nic_from_host(dev: str, base: NicModel) -> tuple[NicModel, list[str]]:
    """The NicModel of a real device, or exit 3 saying plainly that it has no RSS."""
    from netsleuth.errors import FacilityError
    from netsleuth.sources.ethtool import NoRssError, read_rss
    from netsleuth.steering.fromhost import NoModelError, nic_from_rss

    try:
        return nic_from_rss(read_rss(dev), base)
    except NoRssError:
        raise FacilityError(
            f"{dev} has no RSS: its driver answers none of ETHTOOL_GRXRINGS, GRSSH, "
            "GRXFHINDIR (veth, lo and most virtual devices); every packet takes one queue. "
            "Model a NIC with --queues/--key/--l4 instead"
        ) from None
    except NoModelError as err:
        raise FacilityError(str(err)) from None
    except OSError as err:
        raise FacilityError(f"{dev}: SIOCETHTOOL failed: {err.strerror}") from None


def run(opts: Options) -> SteerReport:
    from netsleuth.steering.model import RpsModel
    from netsleuth.steering.run import steer as run_steer
    from netsleuth.steering.run import steer_many

    if opts.html_path:
        from netsleuth.outpaths import refuse_output_over_input

        refuse_output_over_input(opts.html_path, opts.captures, "--html")
    nic = nic_model(opts)
    rps = None
    if opts.rps_cpus is not None:  # --kernel is read only when a model uses it
        rps = RpsModel(kernel_version(opts.kernel), cpu_list(opts.rps_cpus), opts.seed)
    if not opts.compare:
        if opts.dask_address is None:
            result = run_steer(list(opts.captures), nic, rps, workers=opts.workers)
        else:
            (result,) = _on_dask(opts, opts.dask_address, [(nic, rps)])
        report = SteerReport(opts, nic, rps, result)
    else:
        from netsleuth.steering.compare import scenarios, summarize

        # The configured model and the six what-if scenarios in one pass over the capture.
        what_cpus = rps.cpus if rps else tuple(range(nic.queues))
        models = [(nic, rps), *scenarios(nic, what_cpus, kernel_version(opts.kernel), opts.seed)]
        if opts.dask_address is None:
            result, *others = steer_many(list(opts.captures), models, workers=opts.workers)
        else:
            result, *others = _on_dask(opts, opts.dask_address, models)
        report = SteerReport(opts, nic, rps, result)
        if not any(i.error for i in result.inputs):
            report.whatif = summarize(others, what_cpus)
    for failed in (i for i in report.result.inputs if i.error):
        say(f"netsleuth: {failed.error}")
    return report


def _on_dask(opts: Options, address: str, models: Models) -> list[SteerResult]:
    from netsleuth.cluster import steer_dask

    if opts.workers is not None:
        raise InputError("--dask", "runs on the cluster's workers: not with --workers")
    with Progress() as progress:
        return steer_dask(list(opts.captures), models, address=address, progress=progress)


def execute(opts: Options) -> int:
    report = run(opts)
    result = report.result
    # With no input read there is no report to write: each input's error alone (exit 2).
    if opts.html_path and not all(i.error for i in result.inputs):
        write_html(
            opts.html_path, "netsleuth steer", lambda page, h: h.add_steer(page, result, "steer")
        )
    if opts.fmt == "json":
        print_json(report.to_json())
    else:
        from netsleuth.report.steer_text import render_compare, render_steer

        console = stdout_console()
        render_steer(console, result)
        if report.whatif is not None:
            render_compare(console, report.whatif)
    if any(i.error for i in result.inputs):
        return 2
    return fail_exit(result.findings, opts.fail_on)
