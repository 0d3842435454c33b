"""OCI side: adapters over the `oci` SDK (Vault, Object Storage, Notifications, Functions)."""
