"""`exporter`: the receive path's counters for Prometheus, read at scrape time."""
