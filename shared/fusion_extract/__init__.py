"""Unattended Oracle Fusion Data Extraction to OCI Object Storage, as an OCI Functions chain."""

__version__ = "0.1.0"
