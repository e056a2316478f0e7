"""Receive steering models: NIC RSS (Toeplitz) and kernel RPS, applied to captured traffic."""
