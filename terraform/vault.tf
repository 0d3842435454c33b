resource "oci_kms_vault" "this" {
  compartment_id = var.compartment_ocid
  display_name   = "${var.name_prefix}-vault"
  vault_type     = "DEFAULT"
  freeform_tags  = var.freeform_tags
}

# One symmetric key: it encrypts the credentials secret and the landing bucket.
resource "oci_kms_key" "this" {
  compartment_id      = var.compartment_ocid
  display_name        = "${var.name_prefix}-key"
  management_endpoint = oci_kms_vault.this.management_endpoint
  protection_mode     = "HSM"
  freeform_tags       = var.freeform_tags

  key_shape {
    algorithm = "AES"
    length    = 32
  }
}

# The Fusion credentials as one JSON document. Created with a placeholder unless credentials_json is
# given; the real value is then set out of band (README: oci vault secret update-base64), so it never
# reaches Terraform state. Terraform ignores later content changes either way.
resource "oci_vault_secret" "credentials" {
  compartment_id = var.compartment_ocid
  vault_id       = oci_kms_vault.this.id
  key_id         = oci_kms_key.this.id
  secret_name    = "${var.name_prefix}-credentials"
  description    = "Fusion OAuth client (and user) credentials for fusion-extract, as JSON"
  freeform_tags  = var.freeform_tags

  secret_content {
    content_type = "BASE64"
    content      = base64encode(coalesce(var.credentials_json, jsonencode({ placeholder = "set with: oci vault secret update-base64" })))
  }

  lifecycle {
    ignore_changes = [secret_content]
  }
}
