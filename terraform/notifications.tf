# poll: invokes poll; transfer: invokes transfer; rerun: invokes submit; alerts: people.
resource "oci_ons_notification_topic" "this" {
  for_each = local.topics

  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-${each.key}"
  description    = "fusion-extract ${each.key} messages"
  freeform_tags  = var.freeform_tags
}

locals {
  # topic => function it invokes
  topic_targets = {
    poll     = "poll"
    transfer = "transfer"
    rerun    = "submit"
  }
}

resource "oci_ons_subscription" "function" {
  for_each = local.topic_targets

  compartment_id = var.compartment_ocid
  topic_id       = oci_ons_notification_topic.this[each.key].id
  protocol       = "ORACLE_FUNCTIONS"
  endpoint       = oci_functions_function.this[each.value].id
  freeform_tags  = var.freeform_tags
}

resource "oci_ons_subscription" "alert_email" {
  for_each = toset(var.alert_emails)

  compartment_id = var.compartment_ocid
  topic_id       = oci_ons_notification_topic.this["alerts"].id
  protocol       = "EMAIL"
  endpoint       = each.value
  freeform_tags  = var.freeform_tags
}
