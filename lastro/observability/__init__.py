"""Logs, metrics and resource figures of a running service."""
