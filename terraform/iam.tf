# Least privilege, written in the home region. Every statement names our dynamic group (or the
# Object Storage service, or a schedule of ours) and our resources in a where-clause; nothing is
# granted tenancy-wide. README lists the statements for people who write policies by hand.

# Exactly the three functions, by OCID. The functions need no identity to be created, so they come
# first and the group follows in the same apply; a replaced function updates the rule.
resource "oci_identity_dynamic_group" "functions" {
  provider = oci.home

  compartment_id = var.tenancy_ocid
  name           = "${var.name_prefix}-functions"
  description    = "The fusion-extract functions (submit, poll, transfer)"
  matching_rule  = "ANY {${join(", ", [for name in keys(local.functions) : "resource.id = '${oci_functions_function.this[name].id}'"])}}"
  freeform_tags  = var.freeform_tags
}

locals {
  compartment = "compartment id ${var.compartment_ocid}"
  group       = "dynamic-group ${oci_identity_dynamic_group.functions.name}"

  function_statements = concat(
    [
      "Allow ${local.group} to manage objects in ${local.compartment} where target.bucket.name = '${local.bucket_name}'",
      "Allow ${local.group} to read secret-bundles in ${local.compartment} where target.secret.id = '${oci_vault_secret.credentials.id}'",
      "Allow ${local.group} to use metrics in ${local.compartment} where target.metrics.namespace = 'fusion_extract'",
    ],
    [for name in sort(tolist(local.topics)) : "Allow ${local.group} to use ons-topics in ${local.compartment} where target.topic.id = '${oci_ons_notification_topic.this[name].id}'"],
  )

  # Object Storage encrypts the bucket with our key and runs its lifecycle rules on our behalf.
  platform_statements = [
    "Allow service objectstorage-${var.region} to use keys in ${local.compartment} where target.key.id = '${oci_kms_key.this.id}'",
    "Allow service objectstorage-${var.region} to manage object-family in ${local.compartment} where target.bucket.name = '${local.bucket_name}'",
  ]

  # A schedule starts a function as its own principal: each of ours may read and invoke the
  # functions in this compartment, nothing else.
  schedule_ids = concat([for s in oci_resource_scheduler_schedule.extract : s.id], [oci_resource_scheduler_schedule.sweep.id])
  scheduler_statements = flatten([
    for id in local.schedule_ids : [
      "Allow any-user to read fn-function in ${local.compartment} where all {request.principal.type = 'resourceschedule', request.principal.id = '${id}'}",
      "Allow any-user to use fn-invocation in ${local.compartment} where all {request.principal.type = 'resourceschedule', request.principal.id = '${id}'}",
    ]
  ])
}

resource "oci_identity_policy" "functions" {
  provider = oci.home

  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-functions"
  description    = "What the fusion-extract functions may do: this bucket, this secret, these topics, their metrics"
  statements     = local.function_statements
  freeform_tags  = var.freeform_tags
}

resource "oci_identity_policy" "platform" {
  provider = oci.home

  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-platform"
  description    = "Object Storage may use the fusion-extract key and apply the landing bucket's lifecycle rules"
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
