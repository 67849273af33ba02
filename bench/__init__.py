"""Benchmarks: every hot path's cost as a ratio against a baseline measured in the same run."""
