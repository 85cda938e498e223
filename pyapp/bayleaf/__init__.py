"""Bayleaf: Python side of the Bayleaf ASGI server (app loading, lifespan, logging, runner)."""

__version__ = "0.1.0"
