"""Build time: a bundle becomes a per-cloud artifact, checked against the limits and proven."""
