"""The record database: schema, version and migrations (one source: MIGRATIONS).

Layout (version 1), one row a sample, per-CPU and per-queue values packed as little-endian
float32 arrays compressed with zlib (a 128-CPU sample is ~3 KB of rates before compression):

  schema_version(version)        one row: the number of MIGRATIONS applied
  meta(key, value)               host, kernel, created_by, interval
  layout(id, names)              a JSON list of names (CPU ids, counter names), stored once
                                 and referenced by the samples that use it
  sample(id, t, seconds, cpus, cpu, mib_names, mib)
                                 t: end of the interval (Unix s); seconds: its length;
                                 cpu: CPU_COLUMNS x len(cpus) rates per second, row-major;
                                 mib: rates per second of the MIB counters named by mib_names
  device(sample, name, counters, rates, queues)
                                 one row a device whose counters moved in the interval;
                                 queues: RX packets/s by queue number (NaN: not reported)
  finding(id, finding, severity, first, last, samples, summary, evidence)
                                 one row a run of consecutive samples where a finding fired;
                                 summary and evidence are those of its latest sample
  drops(sample, location, reason, protocol, count)
                                 with --drops: kernel drops in the interval by group

Values that are unknown (a counter reset) are NaN. A new version appends a migration; a
database from a newer netsleuth is refused rather than misread.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from netsleuth.errors import InputError

CPU_COLUMNS = ("net_rx", "softirq_pct", "processed", "dropped", "time_squeeze", "received_rps")

MIGRATIONS = (
    """
    CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE layout(id INTEGER PRIMARY KEY, names TEXT NOT NULL UNIQUE);
    CREATE TABLE sample(
        id INTEGER PRIMARY KEY,
        t REAL NOT NULL,
        seconds REAL NOT NULL,
        cpus INTEGER NOT NULL REFERENCES layout(id),
        cpu BLOB NOT NULL,
        mib_names INTEGER REFERENCES layout(id),
        mib BLOB
    );
    CREATE INDEX sample_t ON sample(t);
    CREATE TABLE device(
        sample INTEGER NOT NULL REFERENCES sample(id),
        name TEXT NOT NULL,
        counters INTEGER NOT NULL REFERENCES layout(id),
        rates BLOB NOT NULL,
        queues BLOB,
        PRIMARY KEY(sample, name)
    ) WITHOUT ROWID;
    CREATE TABLE finding(
        id INTEGER PRIMARY KEY,
        finding TEXT NOT NULL,
        severity TEXT NOT NULL,
        first REAL NOT NULL,
        last REAL NOT NULL,
        samples INTEGER NOT NULL,
        summary TEXT NOT NULL,
        evidence TEXT NOT NULL
    );
    CREATE INDEX finding_last ON finding(last);
    CREATE TABLE drops(
        sample INTEGER NOT NULL REFERENCES sample(id),
        location TEXT NOT NULL,
        reason TEXT,
        protocol INTEGER NOT NULL,
        count INTEGER NOT NULL
    );
    CREATE INDEX drops_sample ON drops(sample);
    """,
)
VERSION = len(MIGRATIONS)


def _version(db: sqlite3.Connection) -> int:
    has = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'"
    ).fetchone()
    if not has:
        return 0
    row = db.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(db: sqlite3.Connection, path: str) -> None:
    """Bring the schema to VERSION, one transaction a migration."""
    have = _version(db)
    if have > VERSION:
        raise InputError(path, f"record schema {have} is newer than this netsleuth's ({VERSION})")
    for n in range(have, VERSION):
        # One transaction a step: a record killed mid-migration leaves the previous version.
        db.executescript(
            "BEGIN;"
            "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);"
            + MIGRATIONS[n]
            + f";DELETE FROM schema_version;INSERT INTO schema_version VALUES ({n + 1});COMMIT;"
        )


def _connect(path: Path, create: bool) -> sqlite3.Connection:
    if not create:
        # Read-only (mode=ro, https://www.sqlite.org/uri.html) and no pragma: a report never
        # writes its input (journal_mode=WAL would rewrite header bytes 18-19 of a database
        # in rollback mode) and works on read-only media. as_uri() percent-encodes the path
        # ("?", "#", "%" in a file name stay part of it). On read-only media a WAL database
        # cannot get its -shm file: immutable=1 reads it without one (nothing can write
        # there, so there is no writer to coordinate with).
        uri = f"{path.absolute().as_uri()}?mode=ro"
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            uri += "&immutable=1"
        return sqlite3.connect(uri, uri=True, isolation_level=None)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL loses no committed transaction when the process dies (only on
    # power loss): https://www.sqlite.org/pragma.html#pragma_synchronous
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def open_db(path: Path, *, create: bool) -> sqlite3.Connection:
    """With `create`, a connection in WAL mode at the current schema (made or migrated);
    without, a read-only connection to an existing one. Exit 2 for a file that is not one."""
    if not create and not path.is_file():
        raise InputError(str(path), "no such record database")
    try:
        db = _connect(path, create)
        if create:
            migrate(db, str(path))
        elif _version(db) != VERSION:
            raise InputError(str(path), f"record schema {_version(db)}, expected {VERSION}")
    except sqlite3.OperationalError as err:
        raise InputError(str(path), f"cannot open the database ({err})") from None
    except sqlite3.DatabaseError as err:
        raise InputError(str(path), f"not a record database ({err})") from None
    return db
