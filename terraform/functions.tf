resource "oci_functions_application" "this" {
  compartment_id = var.compartment_ocid
  display_name   = var.name_prefix
  subnet_ids     = local.subnet_ids
  shape          = "GENERIC_X86" # the images are built for linux/amd64
  freeform_tags  = var.freeform_tags

  lifecycle {
    precondition {
      condition     = var.create_network != (length(var.subnet_ids) > 0)
      error_message = "Give subnet_ids, or set create_network = true; not both, not neither."
    }
  }
}

resource "oci_functions_function" "this" {
  for_each = local.functions

  application_id                   = oci_functions_application.this.id
  display_name                     = each.value.display_name
  image                            = each.value.image
  image_digest                     = each.value.image_digest
  memory_in_mbs                    = each.value.spec.memory
  timeout_in_seconds               = each.value.spec.timeout
  detached_mode_timeout_in_seconds = each.value.detached_timeout
  config                           = local.function_config
  freeform_tags                    = var.freeform_tags

  lifecycle {
    precondition {
      condition     = local.function_config_octets <= local.config_limit_octets
      error_message = "The function configuration takes up to ${local.function_config_octets} octets (keys and values, UTF-8; each OCID counted at ${local.created_ocid_octets}); OCI allows ${local.config_limit_octets}. Shorten the longest values (URLs, landing_template) or leave tuning keys at their defaults."
    }
  }

  # A detached invocation that fails (raises, times out, runs out of memory) sends its
  # invocation record to the alerts topic, so a person hears of it even when the run ledger cannot.
  failure_destination {
    kind     = "NOTIFICATION"
    topic_id = oci_ons_notification_topic.this["alerts"].id
  }
}
