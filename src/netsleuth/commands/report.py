"""`netsleuth report`: a self-contained HTML report of a `record` database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from netsleuth.commands.common import write_page
from netsleuth.errors import InputError

if TYPE_CHECKING:
    from netsleuth.report.html import Page


@dataclass(frozen=True)
class Options:
    db_path: str
    output: str


def run(opts: Options) -> tuple[Page, int]:
    """The rendered page and the number of samples in it."""
    from pathlib import Path

    from netsleuth.outpaths import refuse_output_over_input
    from netsleuth.record.schema import open_db
    from netsleuth.record.store import CORRUPT, read
    from netsleuth.report.html import MAX_COLUMNS, record_page

    refuse_output_over_input(opts.output, [opts.db_path], "-o")
    db = open_db(Path(opts.db_path), create=False)
    try:
        rec = read(db, MAX_COLUMNS)
        if not rec.times:
            raise InputError(opts.db_path, "holds no samples yet")
        page = record_page(rec, opts.db_path)
        page.render()  # the page's JSON is checked here: a value JSON cannot hold
    except CORRUPT as err:
        why = " ".join(str(err).split())[:200]
        raise InputError(opts.db_path, f"not a netsleuth record database ({why})") from None
    finally:
        db.close()
    return page, rec.samples


def execute(opts: Options) -> int:
    page, samples = run(opts)
    write_page(page, opts.output, f", {samples} samples")
    return 0
