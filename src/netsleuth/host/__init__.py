"""Host models and rules over parsed snapshots (pure: no file access here)."""
