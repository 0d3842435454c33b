data "oci_objectstorage_namespace" "this" {
  compartment_id = var.compartment_ocid
}

# The landing bucket: data under landing/, the run ledger under _state/, staged members under _staging/.
resource "oci_objectstorage_bucket" "landing" {
  compartment_id        = var.compartment_ocid
  namespace             = data.oci_objectstorage_namespace.this.namespace
  name                  = local.bucket_name
  access_type           = "NoPublicAccess"
  storage_tier          = "Standard"
  versioning            = "Enabled" # versioning and retention rules exclude each other: lifecycle rules below instead
  kms_key_id            = oci_kms_key.this.id
  object_events_enabled = true
  freeform_tags         = var.freeform_tags

  # Object Storage must be allowed to use the key before the bucket can be encrypted with it.
  depends_on = [oci_identity_policy.platform]
}

resource "oci_objectstorage_object_lifecycle_policy" "landing" {
  namespace = data.oci_objectstorage_namespace.this.namespace
  bucket    = oci_objectstorage_bucket.landing.name

  rules {
    name        = "abort-incomplete-multipart-uploads"
    target      = "multipart-uploads"
    action      = "ABORT"
    is_enabled  = true
    time_amount = var.multipart_abort_days
    time_unit   = "DAYS"
  }

  rules {
    name        = "expire-run-ledger"
    target      = "objects"
    action      = "DELETE"
    is_enabled  = true
    time_amount = var.ledger_retention_days
    time_unit   = "DAYS"

    object_name_filter {
      inclusion_prefixes = ["${var.state_prefix}/"]
    }
  }

  rules {
    name        = "expire-abandoned-staging"
    target      = "objects"
    action      = "DELETE"
    is_enabled  = true
    time_amount = var.staging_retention_days
    time_unit   = "DAYS"

    object_name_filter {
      inclusion_prefixes = ["${var.staging_prefix}/"]
    }
  }

  rules {
    name        = "expire-previous-versions"
    target      = "previous-object-versions"
    action      = "DELETE"
    is_enabled  = true
    time_amount = var.previous_version_retention_days
    time_unit   = "DAYS"
  }

  # The service deletes on our behalf only once its policy exists.
  depends_on = [oci_identity_policy.platform]
}
