"""Host sources: thin readers of /proc and /sys under an injectable root directory."""
