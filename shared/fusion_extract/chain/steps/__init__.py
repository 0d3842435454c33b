"""The three steps of the chain; each takes its message and its dependencies."""
