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

# The extract catalog the functions and the CLI read (EXTRACT_CATALOG_OBJECT names it): function
# configuration holds 4 KB in all, a catalog of hundreds of extracts does not fit there. A new catalog is
# a new object, created before the old one goes, so a configuration never names a missing catalog.
resource "oci_objectstorage_object" "catalog" {
  namespace    = data.oci_objectstorage_namespace.this.namespace
  bucket       = oci_objectstorage_bucket.landing.name
  object       = local.catalog_object
  content      = local.extract_catalog
  content_type = "application/json"

  lifecycle {
    create_before_destroy = true
    precondition {
      condition     = !contains([var.state_prefix, var.staging_prefix, split("/", var.landing_prefix)[0]], "_catalog")
      error_message = "_catalog/ holds the extract catalog: choose another state_prefix, staging_prefix or landing_prefix."
    }
  }
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
