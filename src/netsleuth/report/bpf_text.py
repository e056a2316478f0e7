"""`netsleuth bpf` as text: the expression, then the program in tcpdump -ddd form."""

from __future__ import annotations

import click

from netsleuth.bpf import Compiled, format_program


def render_bpf(c: Compiled) -> None:
    click.echo(f"# tcpdump expression (frames as in a capture file):\n{c.expression}\n")
    click.echo(f"# program (tcpdump -ddd form):\n{format_program(c.file_program)}")
    if c.program != c.file_program:
        click.echo(
            "\n# attached to netsleuth's live socket (the kernel strips the first VLAN tag "
            f"before packet sockets; checked with SKF_AD_VLAN_TAG_PRESENT):\n"
            f"{format_program(c.program)}"
        )
