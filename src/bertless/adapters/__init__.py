"""Thin translators between a platform's request shape and the core's `Request`/`Response`."""
