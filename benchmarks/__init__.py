"""Benchmarks: lattice-stripe side by side with the official SDK and the bare transports."""
