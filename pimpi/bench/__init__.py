"""Benchmarks: cluster vs one machine, collective sweeps, network matrix, cost model."""
