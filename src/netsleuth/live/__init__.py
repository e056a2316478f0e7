"""`scan --live`: the scan pipeline on an interface's frames (capture/ring.py), findings as
they appear, an evidence window written on a trigger, fanout workers merged at the end."""
