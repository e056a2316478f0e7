"""One module per command: the command line (cli.py) only wires click options to them.

Each module has the same shape:
  Options    the command's options, as the command line gave them (a frozen dataclass)
  run()      the command's function: Options -> a typed result (the work, no printing of
             results; notes and progress go to stderr as they happen)
  result     a dataclass with to_json(), the command's JSON document (README, "JSON")
  execute()  run, then render: the JSON document or the text renderer (netsleuth.report),
             and the exit code (findings.select.fail_exit for --fail-on)

Imported only when its command runs: `netsleuth --help` loads none of them, nor NumPy.
"""
