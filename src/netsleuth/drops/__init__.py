"""`netsleuth drops`: every packet the kernel frees as dropped, from the skb:kfree_skb
tracepoint, named by kernel location, drop reason and protocol.

Data flow: sources.tracefs (the only I/O: instance lifecycle, raw pages) -> drops.events
(pages -> field arrays, with the layout parsed by drops.format) -> drops.tally (grouping,
rates) -> drops.rules (findings) -> report.drops_text / JSON."""
