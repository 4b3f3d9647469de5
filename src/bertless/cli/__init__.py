"""`bertless ...`: one module per command; each parses its flags and calls the parts."""
