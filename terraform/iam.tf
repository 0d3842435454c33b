# Written in the home region. Each statement follows the pattern Oracle documents for its service, cited
# beside it (docs.oracle.com/iaas/Content/...). Where no document says which principal or condition a
# service honours, the statement is the documented superset, scoped to our compartment, and
# docs/deploy.md ("IAM: what to tighten") says what to narrow once it is proven in a tenancy.
# README lists the statements for people who write policies by hand.

# Exactly the three functions, by OCID. The functions need no identity to be created, so they come
# first and the group follows in the same apply; a replaced function updates the rule.
# Functions/Tasks/functionsaccessingociresources.htm: a dynamic group of functions (resource.id is a
# general matching-rule variable), then policies naming it.
resource "oci_identity_dynamic_group" "functions" {
  provider = oci.home

  compartment_id = var.tenancy_ocid
  name           = "${var.name_prefix}-functions"
  description    = "The fusion-extract functions (submit, poll, transfer)"
  matching_rule  = "ANY {${join(", ", [for name in keys(local.functions) : "resource.id = '${oci_functions_function.this[name].id}'"])}}"
  freeform_tags  = var.freeform_tags
}

# The schedules, as Resource Scheduler documents a schedule acting through a dynamic group
# (resource-scheduler/references/example_policies.htm, Example 3: ALL {resource.type='resourceschedule',
# ...}). Every schedule in this compartment, so one statement serves any number of extracts; Example 3
# names schedules by resource.id, which docs/deploy.md says how to switch to.
resource "oci_identity_dynamic_group" "schedules" {
  provider = oci.home

  compartment_id = var.tenancy_ocid
  name           = "${var.name_prefix}-schedules"
  description    = "The Resource Scheduler schedules in the fusion-extract compartment"
  matching_rule  = "ALL {resource.type = 'resourceschedule', resource.compartment.id = '${var.compartment_ocid}'}"
  freeform_tags  = var.freeform_tags
}

locals {
  compartment = "compartment id ${var.compartment_ocid}"
  group       = "dynamic-group ${oci_identity_dynamic_group.functions.name}"

  function_statements = [
    # Identity/Reference/objectstoragepolicyreference.htm: target.bucket.name; objects covers
    # Get/Put/Head/List/Delete/Rename and multipart uploads.
    "Allow ${local.group} to manage objects in ${local.compartment} where target.bucket.name = '${local.bucket_name}'",
    # Identity/Reference/keypolicyreference.htm (Vault): target.secret.id on secret-bundles.
    "Allow ${local.group} to read secret-bundles in ${local.compartment} where target.secret.id = '${oci_vault_secret.credentials.id}'",
    # Identity/Reference/monitoringpolicyreference.htm: use metrics (PostMetricData) with
    # target.metrics.namespace.
    "Allow ${local.group} to use metrics in ${local.compartment} where target.metrics.namespace = 'fusion_extract'",
    # Identity/Reference/notificationpolicyreference.htm: use ons-topics covers PublishMessage; Notifications
    # supports "only the general variables", so no target.topic.id: the compartment's topics (superset).
    # It also covers a failed detached invocation's record if the platform delivers it as the function.
    "Allow ${local.group} to use ons-topics in ${local.compartment}",
  ]

  # Object Storage encrypts the bucket with our key and runs its lifecycle rules on our behalf.
  platform_statements = [
    # Object/Tasks/encryption.htm and Identity/Reference/keypolicyreference.htm: the service principal
    # objectstorage-<region> uses the key; target.key.id.
    "Allow service objectstorage-${var.region} to use keys in ${local.compartment} where target.key.id = '${oci_kms_key.this.id}'",
    # Object/Tasks/usinglifecyclepolicies.htm: the service must manage object-family to apply the rules.
    "Allow service objectstorage-${var.region} to manage object-family in ${local.compartment} where target.bucket.name = '${local.bucket_name}'",
    # Which principal delivers a detached invocation's failure_destination record is not documented. The
    # Functions service principal is faas (Functions/Tasks/functionscreatingpolicies.htm names it for
    # its own calls): it may publish to the compartment's topics too, so the record arrives either way.
    "Allow service faas to use ons-topics in ${local.compartment}",
  ]

  # Resource Scheduler's documented pattern: the schedule manages the resource type it acts on
  # (example_policies.htm, Examples 2 and 3); for a function, functions-family
  # (Identity/Reference/functionspolicyreference.htm: fn-invocation is InvokeFunction).
  scheduler_statements = [
    "Allow dynamic-group ${oci_identity_dynamic_group.schedules.name} to manage functions-family in ${local.compartment}",
  ]
}

resource "oci_identity_policy" "functions" {
  provider = oci.home

  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-functions"
  description    = "What the fusion-extract functions may do: this bucket, this secret, the topics, their metrics"
  statements     = local.function_statements
  freeform_tags  = var.freeform_tags
}

resource "oci_identity_policy" "platform" {
  provider = oci.home

  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-platform"
  description    = "Object Storage may use the fusion-extract key and apply the bucket's lifecycle rules; Functions may deliver failure records"
  statements     = local.platform_statements
  freeform_tags  = var.freeform_tags
}

resource "oci_identity_policy" "scheduler" {
  provider = oci.home

  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-scheduler"
  description    = "The fusion-extract schedules may start the fusion-extract functions"
  statements     = local.scheduler_statements
  freeform_tags  = var.freeform_tags
}
