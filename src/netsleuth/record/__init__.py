"""`record`: per-interval rates of the receive path, findings and drop groups in SQLite."""
