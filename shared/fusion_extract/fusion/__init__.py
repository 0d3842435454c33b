"""Oracle Fusion side: IDCS tokens and the Batch Processing REST API."""
