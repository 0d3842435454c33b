# Resource Scheduler starts functions detached and hands them the BODY parameter. The provider
# takes the body as a list holding one JSON string; the product accepts it as an object or a string.
resource "oci_resource_scheduler_schedule" "extract" {
  for_each = var.extracts

  compartment_id     = var.compartment_ocid
  display_name       = "${var.name_prefix}-${replace(lower(each.key), "/[^a-z0-9-]/", "-")}"
  description        = "Start a ${each.value.mode} run of the extract ${each.key}"
  action             = "START_RESOURCE"
  recurrence_type    = each.value.recurrence_type
  recurrence_details = each.value.recurrence
  local_time_zone    = each.value.time_zone
  state              = each.value.enabled ? "ACTIVE" : "INACTIVE"
  freeform_tags      = var.freeform_tags

  resources {
    id = oci_functions_function.this["submit"].id

    parameters {
      parameter_type = "BODY"
      value          = [jsonencode({ extract = each.key, mode = each.value.mode })]
    }
  }
}

resource "oci_resource_scheduler_schedule" "sweep" {
  compartment_id     = var.compartment_ocid
  display_name       = "${var.name_prefix}-sweep"
  description        = "Re-drive every run whose next step is overdue"
  action             = "START_RESOURCE"
  recurrence_type    = "CRON"
  recurrence_details = var.sweep_recurrence
  local_time_zone    = "UTC"
  freeform_tags      = var.freeform_tags

  resources {
    id = oci_functions_function.this["poll"].id

    parameters {
      parameter_type = "BODY"
      value          = [jsonencode({ kind = "sweep" })]
    }
  }
}
