"""Write samples to a record database and read them back (pure SQL and packing; the
sampling loop is in record.run)."""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from netsleuth.findings import Finding
from netsleuth.host.rates import Rates
from netsleuth.record.schema import CPU_COLUMNS

F32 = np.dtype("<f4")
Array = npt.NDArray[np.float32]
# Bounds on what a record database may hold, so that a hostile or corrupt file is refused
# before it costs memory: CPU ids below NR_CPUS' largest value (8192 with CONFIG_MAXSMP,
# arch/x86/Kconfig NR_CPUS_RANGE_END), at most MAX_QUEUES RX queues a device (our bound,
# far above the NICs' 64-256, not a kernel limit), BATCH samples reduced at once.
MAX_CPU = 8192
MAX_QUEUES = 4096
MAX_SERIES = 4096  # per-queue series, and drop groups, read back (each ncol floats)
BATCH = 256
# What reading a record database raises when the file is not one netsleuth wrote (corrupt
# or hostile): the CLI turns it into one line and exit 2.
CORRUPT = (
    ValueError,
    KeyError,
    TypeError,
    zlib.error,
    json.JSONDecodeError,
    sqlite3.DatabaseError,
    OverflowError,
)
LAST_TIME = 253402300799.0  # 9999-12-31 23:59:59 UTC: the last second time.gmtime prints


def pack(values: Iterable[float]) -> bytes:
    return zlib.compress(np.fromiter(values, dtype=F32).tobytes(), 1)


def unpack(blob: bytes | None, count: int, *, exact: bool = True) -> Array:
    """The float32 values of a packed blob: exactly `count` of them (at most, when not
    `exact`). Decompresses at most count x 4 bytes, so a small blob that inflates to
    gigabytes (a zlib bomb) costs no more than a blob of its declared size."""
    if blob is None:
        return np.zeros(0, dtype=F32)
    if not isinstance(blob, bytes):
        raise TypeError(f"a packed array is a blob, not {type(blob).__name__}")
    limit = count * F32.itemsize
    d = zlib.decompressobj()
    raw = d.decompress(blob, limit)
    if d.unconsumed_tail and d.decompress(d.unconsumed_tail, 1):
        raise ValueError(f"a packed array is longer than its {count} values")
    if not d.eof or d.unused_data:
        raise ValueError("a packed array is truncated or has bytes after its end")
    if len(raw) % F32.itemsize or (exact and len(raw) != limit):
        raise ValueError(f"a packed array holds {len(raw)} bytes, not {count} values")
    return np.frombuffer(raw, dtype=F32)


@dataclass(frozen=True, slots=True)
class DropRow:
    location: str
    reason: str | None
    protocol: int
    count: int


@dataclass
class Writer:
    """Appends one sample per call, each in its own transaction, so a killed record loses
    at most the sample in flight."""

    db: sqlite3.Connection
    layouts: dict[str, int] = field(default_factory=dict)
    active: dict[str, int] = field(default_factory=dict)  # finding id -> its row

    def meta(self, **items: str) -> None:
        with self._transaction():
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", sorted(items.items()))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            self.layouts.clear()  # ids made in the rolled-back transaction are gone
            raise
        self.db.execute("COMMIT")

    def _layout(self, names: Sequence[str | int]) -> int:
        key = json.dumps(list(names))
        lid = self.layouts.get(key)
        if lid is None:
            self.db.execute("INSERT OR IGNORE INTO layout(names) VALUES (?)", (key,))
            row = self.db.execute("SELECT id FROM layout WHERE names=?", (key,)).fetchone()
            lid = self.layouts[key] = int(row[0])
        return lid

    def add(
        self,
        t: float,
        r: Rates,
        findings: Sequence[Finding],
        drops: Sequence[DropRow] = (),
    ) -> int:
        """Store one interval ending at `t`; returns the sample's id."""
        with self._transaction():
            sid = self._sample(t, r)
            self._devices(sid, r)
            active = self._findings(t, findings)
            self.db.executemany(
                "INSERT INTO drops VALUES (?, ?, ?, ?, ?)",
                [(sid, d.location, d.reason, d.protocol, d.count) for d in drops],
            )
        self.active = active  # only once committed: a rolled-back row is not continued
        return sid

    def _sample(self, t: float, r: Rates) -> int:
        cpus = r.cpus()
        cols = {
            "net_rx": r.net_rx,
            "softirq_pct": r.softirq_pct,
            **{
                c: {cpu: v.get(c, math.nan) for cpu, v in r.softnet.items()}
                for c in CPU_COLUMNS[2:]
            },
        }
        cpu_blob = pack(cols[c].get(cpu, math.nan) for c in CPU_COLUMNS for cpu in cpus)
        names = sorted(r.mib)
        cur = self.db.execute(
            "INSERT INTO sample(t, seconds, cpus, cpu, mib_names, mib) VALUES (?,?,?,?,?,?)",
            (
                t,
                r.seconds,
                self._layout(cpus),
                cpu_blob,
                self._layout(names) if names else None,
                pack(r.mib[n] for n in names) if names else None,
            ),
        )
        return int(cur.lastrowid or 0)

    def _devices(self, sid: int, r: Rates) -> None:
        rows = []
        for dev in sorted(set(r.devices) | set(r.queues)):
            counters = r.devices.get(dev, {})
            queues = r.queues.get(dev, {})
            if not any(counters.values()) and not any(queues.values()):
                continue  # documented: a device whose counters did not move has no row
            names = sorted(counters)
            qblob = None
            if queues:
                qblob = pack(queues.get(q, math.nan) for q in range(max(queues) + 1))
            rows.append((sid, dev, self._layout(names), pack(counters[n] for n in names), qblob))
        self.db.executemany("INSERT INTO device VALUES (?, ?, ?, ?, ?)", rows)

    def _findings(self, t: float, findings: Sequence[Finding]) -> dict[str, int]:
        """Continue the spans of findings that fired in the previous sample, start others;
        returns the rows now active."""
        now: dict[str, int] = {}
        for f in findings:
            if f.id in now:
                continue
            evidence = json.dumps(f.evidence, sort_keys=True, default=str)
            row = self.active.get(f.id)
            if row is not None:
                self.db.execute(
                    "UPDATE finding SET last=?, samples=samples+1, summary=?, evidence=? "
                    "WHERE id=?",
                    (t, f.summary, evidence, row),
                )
            else:
                cur = self.db.execute(
                    "INSERT INTO finding(finding, severity, first, last, samples, summary, "
                    "evidence) VALUES (?, ?, ?, ?, 1, ?, ?)",
                    (f.id, f.severity.label, t, t, f.summary, evidence),
                )
                row = int(cur.lastrowid or 0)
            now[f.id] = row
        return now

    def expire(self, before: float) -> int:
        """Retention: drop samples (and their rows) ending before `before`."""
        with self._transaction():
            last = self.db.execute("SELECT max(id) FROM sample WHERE t < ?", (before,))
            upto = last.fetchone()[0]
            if upto is None:
                return 0
            self.db.execute("DELETE FROM device WHERE sample <= ?", (upto,))
            self.db.execute("DELETE FROM drops WHERE sample <= ?", (upto,))
            n = self.db.execute("DELETE FROM sample WHERE id <= ?", (upto,)).rowcount
            self.db.execute("DELETE FROM finding WHERE last < ?", (before,))
        return int(n)


@dataclass
class Recording:
    """A record database read back in at most `max_columns` time columns: each column is the
    maximum of `per` consecutive samples (a one-second spike stays visible), so the memory
    and the report stay bounded however long the recording."""

    times: list[float]  # end of each column's last sample
    samples: int  # in the database
    per: int  # samples a column
    cpus: list[int]  # the union of every sample's CPUs, in order
    cpu: dict[str, npt.NDArray[np.float64]]  # column -> [time column, cpu index], NaN unknown
    queues: dict[str, npt.NDArray[np.float64]]  # "eth0 rx-3" -> per time column
    findings: list[dict[str, Any]]
    drops: dict[tuple[str, str | None, int], npt.NDArray[np.float64]]  # group -> max count
    meta: dict[str, str]
    notes: list[str] = field(default_factory=list)  # what the bounds left out


def read(db: sqlite3.Connection, max_columns: int | None = None) -> Recording:
    db.execute("BEGIN")  # one snapshot, while a record may still be writing
    try:
        return _read(db, max_columns)
    finally:
        db.execute("COMMIT")


def _time(t: Any) -> float:
    """A stored time: a finite number of seconds from 1970 to the year 9999."""
    if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t <= LAST_TIME:
        raise ValueError(f"time {t!r} is not a Unix time")
    return float(t)


def _meta(db: sqlite3.Connection) -> dict[str, str]:
    meta = {str(k): str(v) for k, v in db.execute("SELECT key, value FROM meta")}
    interval = float(meta.get("interval", "1"))  # ValueError for 'abc'
    if not (math.isfinite(interval) and interval > 0):
        raise ValueError(f"interval {meta['interval']!r} is not a positive number of seconds")
    return meta


def _cpu_layouts(db: sqlite3.Connection) -> dict[int, list[int]]:
    """The layouts the samples' CPU lists refer to: each a list of distinct CPU numbers."""
    out = {}
    for (lid,) in db.execute("SELECT DISTINCT cpus FROM sample"):
        row = db.execute("SELECT names FROM layout WHERE id=?", (lid,)).fetchone()
        if row is None:
            raise ValueError(f"samples refer to CPU layout {lid!r}, which is missing")
        cpus = json.loads(row[0])
        if not (
            isinstance(cpus, list)
            and all(type(c) is int and 0 <= c < MAX_CPU for c in cpus)
            and len(set(cpus)) == len(cpus)
        ):
            raise ValueError(f"CPU layout {lid!r} is not a list of distinct CPU numbers")
        out[lid] = cpus
    return out


def _read(db: sqlite3.Connection, max_columns: int | None) -> Recording:
    meta = _meta(db)
    layouts = _cpu_layouts(db)
    n = int(db.execute("SELECT count(*) FROM sample").fetchone()[0])
    per = max(1, math.ceil(n / max_columns)) if max_columns else 1
    ncol = math.ceil(n / per)
    all_cpus = sorted({c for cpus in layouts.values() for c in cpus})
    times, column, cpu = _read_cpus(db, layouts, all_cpus, per, ncol)
    notes: list[str] = []
    return Recording(
        times=times,
        samples=n,
        per=per,
        cpus=all_cpus,
        cpu=cpu,
        queues=_read_queues(db, column, ncol, notes),
        findings=_findings(db),
        drops=_read_drops(db, column, ncol, notes),
        meta=meta,
        notes=notes,
    )


def _read_cpus(
    db: sqlite3.Connection,
    layouts: dict[int, list[int]],
    all_cpus: list[int],
    per: int,
    ncol: int,
) -> tuple[list[float], dict[int, int], dict[str, npt.NDArray[np.float64]]]:
    """Each time column's time and per-CPU maxima, and which column each sample id went to."""
    index = {c: i for i, c in enumerate(all_cpus)}
    cpu = {c: np.full((ncol, len(all_cpus)), np.nan) for c in CPU_COLUMNS}
    times = [0.0] * ncol
    column: dict[int, int] = {}  # sample id -> time column
    # Samples of one column with one CPU layout are reduced together (one NumPy call for
    # the lot, not one per sample: a day is 86400 of them), at most BATCH at a time.
    batch: list[npt.NDArray[np.float32]] = []
    key = (-1, -1)  # (column, layout) of the batch

    def flush() -> None:
        if batch:
            col, lid = key
            at = [index[c] for c in layouts[lid]]
            top = np.fmax.reduce(np.stack(batch), axis=0)
            for k, name in enumerate(CPU_COLUMNS):
                cpu[name][col, at] = np.fmax(cpu[name][col, at], top[k])
            batch.clear()

    rows = db.execute("SELECT id, t, cpus, cpu FROM sample ORDER BY id")
    for i, (sid, t, lid, blob) in enumerate(rows):
        col = column[sid] = i // per
        times[col] = _time(t)
        if (col, lid) != key or len(batch) >= BATCH:
            flush()
            key = (col, lid)
        width = len(layouts[lid])
        batch.append(unpack(blob, len(CPU_COLUMNS) * width).reshape(len(CPU_COLUMNS), width))
    flush()
    return times, column, cpu


def _read_queues(
    db: sqlite3.Connection, column: dict[int, int], ncol: int, notes: list[str]
) -> dict[str, npt.NDArray[np.float64]]:
    """ "DEV rx-Q" -> its maximum per time column, at most MAX_SERIES series."""
    by_device: dict[str, npt.NDArray[np.float64]] = {}  # device -> [time column, queue]
    held = 0  # queue series in by_device
    skipped = 0
    for sid, name, qblob in db.execute("SELECT sample, name, queues FROM device"):
        if qblob is None or sid not in column:
            continue
        v = unpack(qblob, MAX_QUEUES, exact=False)
        m = by_device.get(name)
        if m is None or m.shape[1] < len(v):
            grow = len(v) - (m.shape[1] if m is not None else 0)
            if held + grow > MAX_SERIES:
                skipped += 1
                continue
            held += grow
            grown = np.full((ncol, len(v)), np.nan)
            if m is not None:
                grown[:, : m.shape[1]] = m
            m = by_device[name] = grown
        c = column[sid]
        m[c, : len(v)] = np.fmax(m[c, : len(v)], v)
    if skipped:
        notes.append(f"{skipped} device rows not drawn: more than {MAX_SERIES} queue series")
    return {
        f"{name} rx-{q}": m[:, q]
        for name, m in sorted(by_device.items())
        for q in range(m.shape[1])
    }


def _read_drops(
    db: sqlite3.Connection, column: dict[int, int], ncol: int, notes: list[str]
) -> dict[tuple[str, str | None, int], npt.NDArray[np.float64]]:
    """(location, reason, protocol) -> its maximum per time column; past MAX_SERIES
    groups, one "other" series."""
    drops: dict[tuple[str, str | None, int], npt.NDArray[np.float64]] = {}
    other = ("other", None, 0)
    for sid, loc, reason, proto, count in db.execute("SELECT * FROM drops"):
        if sid in column:
            group = (loc, reason, proto)
            if group not in drops and len(drops) >= MAX_SERIES:
                group = other  # one series for the rest, as the exporter's bound
            series = drops.setdefault(group, np.zeros(ncol))
            series[column[sid]] = max(series[column[sid]], count)
    if other in drops and len(drops) > MAX_SERIES:
        notes.append(f"drop groups past the first {MAX_SERIES} are drawn together as 'other'")
    return drops


def _no_constant(name: str) -> None:
    raise ValueError(f"finding evidence holds {name}, which JSON has not")


def _findings(db: sqlite3.Connection) -> list[dict[str, Any]]:
    return [
        {
            "id": str(f),
            "severity": str(sev),
            "first": _time(first),
            "last": _time(last),
            "samples": int(n),
            "summary": str(summ),
            "evidence": json.loads(ev, parse_constant=_no_constant),
        }
        for f, sev, first, last, n, summ, ev in db.execute(
            "SELECT finding, severity, first, last, samples, summary, evidence FROM finding "
            "ORDER BY first"
        )
    ]
