"""The demo's HTML report: the three incident scans and incident 3's steering in one page."""

from __future__ import annotations

from pathlib import Path

from netsleuth.report import html
from netsleuth.scan import ScanResult
from netsleuth.steering.run import SteerResult


def demo_page(
    scans: list[tuple[Path, str, ScanResult]], steered: list[tuple[str, SteerResult]]
) -> html.Page:
    page = html.Page("netsleuth demo: three incidents")
    for path, story, result in scans:
        html.add_scan(page, result, f"{story} ({path.name})")
    for label, steer in steered:
        html.add_steer(page, steer, f"steer, 8 queues / 8 CPUs: {label}")
    return page
