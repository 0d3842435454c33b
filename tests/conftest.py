"""Test-wide settings. The OCI SDK's default retries and its process-wide circuit breaker are turned off
before anything imports `oci`, so one error-path test cannot slow down or break another."""

import os

os.environ["OCI_SDK_DEFAULT_RETRY_ENABLED"] = "false"
os.environ["OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED"] = "false"
