# Copy to terraform/terraform.tfvars (git-ignored) and fill in. OCIDs, digests and URLs below are
# shapes, not values. The credentials are NOT set here: see README "Setting the credentials".

tenancy_ocid     = "ocid1.tenancy.oc1..aaaaaaaaexampletenancy"
compartment_ocid = "ocid1.compartment.oc1..aaaaaaaaexamplecompartment"
region           = "eu-frankfurt-1"
home_region      = "eu-frankfurt-1"

# Network: existing private subnet(s) with a NAT and a service gateway ...
subnet_ids = ["ocid1.subnet.oc1.eu-frankfurt-1.aaaaaaaaexamplesubnet"]
# ... or let this configuration create them:
# subnet_ids     = []
# create_network = true

# Images pushed by the deploy guide; the digest is what `docker push` (or `fn deploy`) prints.
images = {
  submit   = { image = "fra.ocir.io/mytenancyns/fusion-extract-submit:0.1.0", digest = "sha256:0000000000000000000000000000000000000000000000000000000000000001" }
  poll     = { image = "fra.ocir.io/mytenancyns/fusion-extract-poll:0.1.0", digest = "sha256:0000000000000000000000000000000000000000000000000000000000000002" }
  transfer = { image = "fra.ocir.io/mytenancyns/fusion-extract-transfer:0.1.0", digest = "sha256:0000000000000000000000000000000000000000000000000000000000000003" }
}

fusion_base_url = "https://myfusionpod.fa.ocs.oraclecloud.com"
idcs_url        = "https://idcs-0123456789abcdef.identity.oraclecloud.com"
fusion_scope    = "urn:opc:resource:fusion:myfusionpod:saas-batch/"

# One schedule per extract (the name as defined in Fusion Data Extraction).
extracts = {
  # Sales starts at 02:00 Berlin time and is expected to land by 06:00 (expected_within_hours, default 4).
  "Sales"  = { mode = "full", recurrence = "FREQ=DAILY;BYHOUR=2;BYMINUTE=0", time_zone = "Europe/Berlin" }
  "Ledger" = { mode = "incremental", recurrence = "0 * * * *", recurrence_type = "CRON", expected_within_hours = 1 }
}

alert_emails = ["data-platform@example.com"]

# Optional: behaviour overrides (unset keeps the product default).
# tuning = { run_deadline_hours = 12, upload_part_mb = 32 }
