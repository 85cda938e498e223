"""Deployment tests: proxy headers, nginx in front, Daphne parity (CLI, access log)."""
