output "application_id" {
  description = "OCID of the functions application (fn invoke <application name> <function name>)."
  value       = oci_functions_application.this.id
}

output "application_name" {
  description = "Display name of the functions application, as fn and the console show it."
  value       = oci_functions_application.this.display_name
}

output "function_ids" {
  description = "OCID of each function, by step name."
  value       = { for name, f in oci_functions_function.this : name => f.id }
}

output "invoke_endpoints" {
  description = "Invoke endpoint of each function, by step name."
  value       = { for name, f in oci_functions_function.this : name => f.invoke_endpoint }
}

output "bucket" {
  description = "Landing bucket name and namespace."
  value = {
    name      = oci_objectstorage_bucket.landing.name
    namespace = oci_objectstorage_bucket.landing.namespace
  }
}

output "catalog_object" {
  description = "Name of the extract catalog object in the bucket (EXTRACT_CATALOG_OBJECT); oci os object get -bn <bucket> --name <it> --file - prints the catalog."
  value       = oci_objectstorage_object.catalog.object
}

output "credentials_secret_id" {
  description = "OCID of the Vault secret that holds the Fusion credentials JSON; set its value with oci vault secret update-base64."
  value       = oci_vault_secret.credentials.id
}

output "topic_ids" {
  description = "OCID of each topic (poll, transfer, rerun, alerts)."
  value       = { for name, t in oci_ons_notification_topic.this : name => t.id }
}

output "schedule_ids" {
  description = "OCID of each extract's schedule, and of the sweep."
  value       = merge({ for name, s in oci_resource_scheduler_schedule.extract : name => s.id }, { sweep = oci_resource_scheduler_schedule.sweep.id })
}

output "dynamic_group_name" {
  description = "Name of the dynamic group that matches exactly the three functions."
  value       = oci_identity_dynamic_group.functions.name
}

output "policy_statements" {
  description = "Every IAM statement this configuration grants, by policy."
  value = {
    functions = oci_identity_policy.functions.statements
    platform  = oci_identity_policy.platform.statements
    scheduler = oci_identity_policy.scheduler.statements
  }
}

output "invoke_log_id" {
  description = "OCID of the application's invoke log (`fusion-extract logs RUN` searches it)."
  value       = oci_logging_log.invoke.id
}

output "log_group_id" {
  description = "OCID of the log group that holds the invoke log (a Logging search names both)."
  value       = oci_logging_log_group.this.id
}

output "function_config" {
  description = "The configuration every function reads; `fusion-extract configure` builds the CLI's profile from it."
  value       = local.function_config
}

output "compartment_id" {
  description = "OCID of the compartment that holds the deployment (its schedules, alarms and metrics)."
  value       = var.compartment_ocid
}

output "region" {
  description = "Region identifier the chain runs in."
  value       = var.region
}
