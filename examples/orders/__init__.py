"""The reference orders service: what the benchmarks and end-to-end tests drive."""
