# Alarms on the functions' custom metrics (namespace fusion_extract, posted through the telemetry-ingestion
# endpoint; README: Observability), routed to the alerts topic beside the functions' own alerts.

locals {
  alarm_destination = [oci_ons_notification_topic.this["alerts"].id]
  alarms            = var.alarms_enabled ? { failed = "RunsFailed", timed_out = "RunsTimedOut" } : {}
  missed_schedules  = var.alarms_enabled ? { for name, e in var.extracts : name => e if e.enabled } : {}
}

resource "oci_monitoring_alarm" "runs" {
  for_each = local.alarms

  compartment_id               = var.compartment_ocid
  metric_compartment_id        = var.compartment_ocid
  display_name                 = "${var.name_prefix}-run-${replace(each.key, "_", "-")}"
  namespace                    = "fusion_extract"
  query                        = "${each.value}[5m]{deployment = \"fusion-extract\"}.groupBy(extract).sum() > 0"
  severity                     = "CRITICAL"
  body                         = "A fusion-extract run ended ${upper(each.key)}. The alert on the alerts topic names the run and the reason; README: Runbook."
  destinations                 = local.alarm_destination
  is_enabled                   = true
  pending_duration             = "PT1M"
  repeat_notification_duration = "PT24H"
  message_format               = "ONS_OPTIMIZED"
  freeform_tags                = var.freeform_tags
}

resource "oci_monitoring_alarm" "missed_schedule" {
  for_each = local.missed_schedules

  compartment_id        = var.compartment_ocid
  metric_compartment_id = var.compartment_ocid
  display_name          = "${var.name_prefix}-missed-${replace(lower(each.key), "/[^a-z0-9-]/", "-")}"
  namespace             = "fusion_extract"
  query                 = "RunsLanded[1h]{extract = \"${each.key}\"}.groupBy(extract).absent(${each.value.expected_within_hours}h)"
  severity              = "CRITICAL"
  body                  = "No run of the extract ${each.key} landed within ${each.value.expected_within_hours} hours. `fusion-extract runs --extract \"${each.key}\"`; README: Runbook, overdue."
  destinations          = local.alarm_destination
  is_enabled            = true
  pending_duration      = "PT5M"
  message_format        = "ONS_OPTIMIZED"
  freeform_tags         = var.freeform_tags
}
