"""Build-time only: turning checkpoints into bundles. Never imported inside a function."""
