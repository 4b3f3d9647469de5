"""Platform facts: each cloud's limits, prices, runtimes and naming rules, as data with sources."""
