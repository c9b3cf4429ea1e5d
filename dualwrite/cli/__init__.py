"""The `dualwrite` command line: the one place that wires the components together."""
