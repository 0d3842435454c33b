# Terraform and provider versions. The oci provider floor is set by the newest argument used:
#   detached_mode_timeout_in_seconds, failure_destination  7.21.0 (long-running functions)
#   resources.parameters BODY for functions                8.20.0 (body parameter fix)
#   local_time_zone on oci_resource_scheduler_schedule     8.27.0 (local time zone support)
terraform {
  required_version = ">= 1.3.0"

  required_providers {
    oci = {
      source  = "oracle/oci"
      version = ">= 8.27.0, < 9.0.0"
    }
  }
}
