"""Serving on this machine: `bertless serve`, a child server, a Lambda Runtime API stand-in."""
