"""Thin commands: cli.py is click wiring only (each command hands its options to its module
in netsleuth.commands), and `netsleuth --help` / `netsleuth CMD --help` import no NumPy, no
rich and no command module."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from netsleuth import craft
from netsleuth.capture.writer import write_pcap
from netsleuth.cli import main
from netsleuth.craft.mix import mixed_capture
from tests.conftest import ROOT

CLI = ROOT / "src" / "netsleuth" / "cli.py"
HEAVY = ("numpy", "rich", "netsleuth.commands", "netsleuth.scan", "netsleuth.steering")


def command_paths() -> list[list[str]]:
    out: list[list[str]] = [[]]
    for name, cmd in main.commands.items():
        sub = getattr(cmd, "commands", None)
        out += [[name, s] for s in sub] if sub else [[name]]
    return out


def test_help_of_every_command_imports_nothing_heavy() -> None:
    paths = command_paths()
    assert ["scan"] in paths and ["lab", "replay"] in paths and len(paths) >= 16
    code = (
        "import json, sys\n"
        "from netsleuth.cli import main\n"
        f"for path in {paths!r}:\n"
        "    try:\n"
        "        main([*path, '--help'], standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(res.stdout.splitlines()[-1])
    assert "netsleuth.cli" in loaded
    assert [m for m in loaded if m.startswith(HEAVY)] == []


def test_python_m_netsleuth_help_imports_no_numpy() -> None:
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "netsleuth", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Commands:" in res.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines()]
    assert "netsleuth.cli" in imported
    assert [m for m in imported if m.startswith(HEAVY)] == []


def test_each_command_callback_only_hands_its_options_to_its_module() -> None:
    """A callback is a docstring, one import from netsleuth.commands and one return: no
    JSON assembly, orchestration or sampling loop in the CLI layer."""
    tree = ast.parse(CLI.read_text())
    callbacks = [
        f
        for f in tree.body
        if isinstance(f, ast.FunctionDef)
        and any("command" in ast.unparse(d) for d in f.decorator_list)
    ]
    assert len(callbacks) >= 16
    for f in callbacks:
        body = [
            s for s in f.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
        ]
        assert len(body) == 2, f.name
        imp, ret = body
        assert isinstance(imp, ast.ImportFrom) and imp.module == "netsleuth.commands", f.name
        assert isinstance(ret, ast.Return), f.name


def test_a_run_that_starts_no_worker_imports_no_pool(tmp_path: Path) -> None:
    """scan and steer on inputs too small for workers (cores.worth_processes), with the
    default --workers, import neither netsleuth.scale nor multiprocessing (18 ms of
    start-up here: the pool, the planner); both do once the inputs are worth workers."""
    small = tmp_path / "small.pcap"
    with open(small, "wb") as fh:
        write_pcap(
            fh,
            [
                (i, craft.ether(craft.ipv4("192.0.2.1", "192.0.2.2", b"", 6), 0x0800))
                for i in range(3)
            ],
        )
    code = (
        "import json, sys\n"
        "from netsleuth import cores\n"
        "from netsleuth.cli import main\n"
        "cores.usable_cores = lambda: 2\n"
        "cores.worth_processes = lambda paths: sys.argv[1] == 'worth'\n"
        "for cmd in ('scan', 'steer'):\n"
        "    try:\n"
        "        main([cmd, '--format', 'json', sys.argv[2]], standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    for worth in ("small", "worth"):
        res = subprocess.run(
            [sys.executable, "-c", code, worth, str(small)],
            capture_output=True,
            text=True,
            check=True,
        )
        loaded = json.loads(res.stdout.splitlines()[-1])
        assert "netsleuth.scan" in loaded and "netsleuth.steering.run" in loaded
        pooled = [m for m in loaded if m.startswith(("netsleuth.scale", "multiprocessing"))]
        assert (pooled != []) == (worth == "worth"), worth


def test_scan_and_steer_leave_numpy_ma_unimported(tmp_path: Path) -> None:
    """NumPy 2.3+ imports numpy.ma the first time np.unique runs without return_index,
    inverse or counts (20 ms of every process's start-up, each worker's too): the hot path
    uses netsleuth.arrays.distinct instead. The mix's GRE keys reach checks/tunnels.py, one
    such caller; test_no_call_imports_numpy_ma holds the others to it."""
    cap = tmp_path / "mix.pcap"
    with open(cap, "wb") as fh:
        write_pcap(fh, list(mixed_capture(3000, seed=5)))
    code = (
        "import json, sys\n"
        "from netsleuth.cli import main\n"
        "for cmd in ('scan', 'steer'):\n"
        "    try:\n"
        "        main([cmd, '--format', 'json', '--workers', '1', sys.argv[1]],"
        " standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(cap)], capture_output=True, text=True, check=True
    )
    loaded = json.loads(res.stdout.splitlines()[-1])
    assert "netsleuth.checks.tunnels" in loaded and "netsleuth.steering.run" in loaded
    assert "numpy.ma" not in loaded


# The set functions that call np.unique(b) with no return flag, which imports numpy.ma on
# NumPy 2.3+ (numpy/lib/_arraysetops_impl.py): np.isin takes that path too when its second
# argument's values spread wide, so it may only test against a constant (an UPPER_CASE
# name or a literal: ten values or fewer take its loop path); data goes to arrays.member.
SET_FUNCTIONS = {"in1d", "intersect1d", "setdiff1d", "setxor1d", "union1d"}
RETURN_FLAGS = {"return_index", "return_inverse", "return_counts"}


def _constant(node: ast.expr) -> bool:
    if isinstance(node, ast.Tuple | ast.List):
        return all(isinstance(e, ast.Constant | ast.Name) for e in node.elts)
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return bool(name) and name.isupper()


def _numpy_ma_callers(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if not (isinstance(node.func.value, ast.Name) and node.func.value.id == "np"):
            continue
        name = node.func.attr
        flags = {k.arg for k in node.keywords} & RETURN_FLAGS
        if (
            name in SET_FUNCTIONS
            or (name == "unique" and not flags)
            or (name == "isin" and not _constant(node.args[1]))
        ):
            out.append((node.lineno, name))
    return out


def test_no_call_imports_numpy_ma() -> None:
    found = {
        f"{path.relative_to(ROOT)}:{line}": name
        for path in sorted((ROOT / "src" / "netsleuth").rglob("*.py"))
        for line, name in _numpy_ma_callers(ast.parse(path.read_text()))
    }
    assert found == {}
    # The check itself finds each kind of call.
    code = "np.unique(a)\nnp.isin(a, rows)\nnp.setdiff1d(a, b)\nnp.isin(a, ETHER)\n"
    code += "np.unique(a, return_counts=True)\nnp.isin(a, (X, 7))\n"
    assert _numpy_ma_callers(ast.parse(code)) == [(1, "unique"), (2, "isin"), (3, "setdiff1d")]
