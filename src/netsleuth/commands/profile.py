"""`netsleuth profile`: sample kernel stacks per CPU (perf_event_open) and name the
contexts, the hot NET_RX functions and their known causes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netsleuth.cliutil import stdout_console
from netsleuth.commands.common import cpu_list, print_json
from netsleuth.errors import InputError
from netsleuth.findings.select import fail_exit

if TYPE_CHECKING:
    from netsleuth.profile.run import Profile


@dataclass(frozen=True)
class Options:
    cpus: str
    duration: float
    frequency: int
    folded_path: str | None
    fmt: str
    fail_on: str | None


@dataclass(frozen=True)
class ProfileResult:
    profile: Profile

    def to_json(self) -> dict[str, Any]:
        from netsleuth.report.jsonout import document

        p = self.profile
        return document("profile", p.findings, **p.to_json(), notes=p.notes)


def run(opts: Options) -> ProfileResult:
    """Probe perf on the first CPU (exit 3 before sampling when it is not permitted), then
    sample the chosen CPUs (auto: the softirq hotspots) and write --folded."""
    from netsleuth.outpaths import atomic_output, require_writable_folder
    from netsleuth.profile.run import auto_cpus, check_cpus, online_cpus, probe
    from netsleuth.profile.run import profile as run_profile

    chosen = None if opts.cpus == "auto" else _chosen(opts.cpus)
    if chosen is not None:
        check_cpus(chosen)
    if opts.folded_path:  # tried now, not after the whole run's samples are taken
        require_writable_folder(opts.folded_path)
    probe(chosen[0] if chosen else online_cpus()[0])
    notes: list[str] = []
    if chosen is None:
        chosen = auto_cpus(notes)
    prof = run_profile(chosen, opts.duration or None, opts.frequency, notes=notes)
    if opts.folded_path:
        text = "".join(line + "\n" for line in prof.folded()).encode()
        try:
            with atomic_output(opts.folded_path) as fh:  # whole or not at all
                fh.write(text)
        except OSError as err:
            raise InputError(
                opts.folded_path, f"cannot write folded stacks: {err.strerror}"
            ) from None
    return ProfileResult(prof)


def _chosen(text: str) -> tuple[int, ...]:
    """--cpus as a kernel cpulist, but `all` alone is the online CPUs: the kernel's `all`
    spans the possible CPUs (0-N), which include offline ones where SMT is turned off or a
    VM has CPU hotplug slots (possible 0-63, online 0-7), and an offline CPU cannot be
    sampled, so `--cpus all` was refused on every such host. A list naming an offline CPU
    otherwise (`0-N`, `all:1/2`) is still refused, naming it."""
    from netsleuth.profile.run import online_cpus

    if text.strip().lower() == "all":
        return online_cpus()
    return cpu_list(text, "--cpus")


def execute(opts: Options) -> int:
    result = run(opts)
    if opts.fmt == "json":
        print_json(result.to_json())
    else:
        from netsleuth.report.profile_text import render_profile

        render_profile(stdout_console(), result.profile)
    return fail_exit(result.profile.findings, opts.fail_on)
