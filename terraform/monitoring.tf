# Alarms on the functions' custom metrics (namespace fusion_extract, posted through the telemetry-ingestion
# endpoint; README: Observability), routed to the alerts topic beside the functions' own alerts.
# Every metric carries deployment = "fusion-extract" (fusion_extract.oci.metrics). What each query means,
# by Monitoring's documented semantics, is evaluated on synthetic series by tests/terraform/test_alarms.py.

locals {
  alarm_destination = [oci_ons_notification_topic.this["alerts"].id]
  # Failure alarms: a run that ended so, counted by the step that ended it.
  failure_alarms = { failed = "RunsFailed", timed_out = "RunsTimedOut" }
  # Late alarms: every enabled extract's scheduled runs are expected to land within expected_within_hours.
  watched_extracts = { for name, e in var.extracts : name => e if e.enabled }
}

resource "oci_monitoring_alarm" "runs" {
  for_each = var.alarms_enabled ? local.failure_alarms : {}

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

# The sweep posts HoursLate for every watched extract every few minutes: 0 while its latest scheduled run
# landed within expected_within_hours of its start, else the hours past that expected landing
# (fusion_extract.service_level). max() over the hour fires at the first late figure, whatever the sweep's
# cadence (up to an hour); once a run lands the sweep posts 0, and the alarm clears when the hour holds no
# late figure. The sweep alerts `late` on the alerts topic at the same moment, once per expected landing.
resource "oci_monitoring_alarm" "late" {
  for_each = var.alarms_enabled ? local.watched_extracts : {}

  compartment_id               = var.compartment_ocid
  metric_compartment_id        = var.compartment_ocid
  display_name                 = "${var.name_prefix}-late-${replace(lower(each.key), "/[^a-z0-9-]/", "-")}"
  namespace                    = "fusion_extract"
  query                        = "HoursLate[1h]{deployment = \"fusion-extract\", extract = \"${each.key}\"}.groupBy(extract).max() > 0"
  severity                     = "CRITICAL"
  body                         = "A scheduled run of the extract ${each.key} did not land within ${each.value.expected_within_hours} hours of its start. `fusion-extract status`; README: Service levels."
  destinations                 = local.alarm_destination
  is_enabled                   = true
  pending_duration             = "PT5M"
  repeat_notification_duration = "PT24H"
  message_format               = "ONS_OPTIMIZED"
  freeform_tags                = var.freeform_tags
}

# A threshold alarm sees nothing when nothing is posted: this one fires when no HoursSinceLanded at all
# arrived for an hour (the sweep stopped, its schedule or grant is gone, the catalog object is unreadable).
# absent() stops reporting after its detection period (72 h, the longest), so it repeats daily until then.
resource "oci_monitoring_alarm" "sweep_silent" {
  count = var.alarms_enabled && length(local.watched_extracts) > 0 ? 1 : 0

  compartment_id               = var.compartment_ocid
  metric_compartment_id        = var.compartment_ocid
  display_name                 = "${var.name_prefix}-sweep-silent"
  namespace                    = "fusion_extract"
  query                        = "HoursSinceLanded[1h]{deployment = \"fusion-extract\"}.groupBy(deployment).absent(72h)"
  severity                     = "CRITICAL"
  body                         = "The sweep posted no HoursSinceLanded for an hour: no extract is watched for missed schedules. Check the sweep schedule and the poll function's log; README: Runbook."
  destinations                 = local.alarm_destination
  is_enabled                   = true
  pending_duration             = "PT5M"
  repeat_notification_duration = "PT24H"
  message_format               = "ONS_OPTIMIZED"
  freeform_tags                = var.freeform_tags
}
