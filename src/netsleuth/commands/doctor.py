"""`netsleuth doctor`: sample the receive path (or read a bundle or a root) and diagnose it;
with --profile, also sample the kernel stacks of the softirq hotspot CPUs."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netsleuth.cliutil import stdout_console
from netsleuth.commands.common import print_json, say
from netsleuth.errors import InputError
from netsleuth.findings.select import fail_exit

if TYPE_CHECKING:
    from netsleuth.doctor import Diagnosis
    from netsleuth.profile.run import Profile


@dataclass(frozen=True)
class Options:
    bundle: str | None
    root: str | None
    samples: int
    interval: float
    with_profile: bool
    profile_duration: float
    fmt: str
    fail_on: str | None


@dataclass
class DoctorReport:
    """The diagnosis and, with --profile, the hotspot CPUs' profile (None when no CPU was a
    hotspot; its findings are already among the diagnosis's)."""

    diagnosis: Diagnosis
    profiled: bool = False
    profile: Profile | None = None

    def to_json(self) -> dict[str, Any]:
        from netsleuth.report.doctor_text import rates_json
        from netsleuth.report.jsonout import document

        d = self.diagnosis
        last = d.samples[-1]
        extra: dict[str, Any] = {}
        if self.profiled:
            p = self.profile
            extra["profile"] = None if p is None else {**p.to_json(), "notes": p.notes}
        return document(
            "doctor",
            d.findings,
            source=d.source,
            samples=d.count,
            kernel=last.kernel,
            cpus=last.cpus,
            rates=rates_json(d.rates),
            notes=d.notes,
            **extra,
        )


def check(opts: Options) -> None:
    if opts.bundle and opts.root:
        raise InputError("--bundle", "give --bundle or --root, not both")
    if opts.with_profile and (opts.bundle or opts.root or opts.samples < 2):
        raise InputError("--profile", "profiles a live host: no --bundle/--root, --samples >= 2")
    if opts.with_profile:
        from netsleuth.profile.run import online_cpus, probe

        probe(online_cpus()[0])  # exit 3 now, not after sampling, if perf is not permitted


def run(opts: Options) -> DoctorReport:
    from pathlib import Path

    from netsleuth import doctor as doc

    check(opts)
    if opts.bundle:
        d = doc.doctor_bundle(Path(opts.bundle))
    elif opts.root:
        d = doc.doctor_root(Path(opts.root))
    else:
        if opts.samples >= 2 and opts.fmt == "text" and sys.stderr.isatty():
            say(f"sampling {opts.samples} times, {opts.interval:g} s apart...")
        d = doc.doctor_live(opts.samples, opts.interval)
    report = DoctorReport(d)
    if opts.with_profile:
        from netsleuth.profile.run import hotspot_cpus
        from netsleuth.profile.run import profile as run_profile

        cpus = hotspot_cpus(d.findings)
        report.profiled = True
        report.profile = run_profile(cpus, opts.profile_duration, 99) if cpus else None
        if report.profile is not None:
            d.findings.extend(report.profile.findings)
    return report


def execute(opts: Options) -> int:
    report = run(opts)
    if opts.fmt == "json":
        print_json(report.to_json())
        return fail_exit(report.diagnosis.findings, opts.fail_on)
    from netsleuth.report.doctor_text import render_doctor

    console = stdout_console()
    render_doctor(console, report.diagnosis)
    if report.profiled:
        if report.profile is None:
            console.print("\nprofile: no softirq hotspot, no profile taken", highlight=False)
        else:
            from netsleuth.report.profile_text import render_profile

            console.print()
            render_profile(console, report.profile)
    return fail_exit(report.diagnosis.findings, opts.fail_on)
