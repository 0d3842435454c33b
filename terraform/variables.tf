# Inputs. Nothing here guesses a tenancy, compartment or region: those have no default.

# -- Where ---------------------------------------------------------------------------------------

variable "tenancy_ocid" {
  type        = string
  description = "OCID of the tenancy; the dynamic group is created in it (dynamic groups live at the tenancy root)."

  validation {
    condition     = can(regex("^ocid1\\.tenancy\\.[a-z0-9_-]+\\.[a-z0-9_-]*\\.[a-z0-9]+$", var.tenancy_ocid))
    error_message = "tenancy_ocid must be a tenancy OCID (ocid1.tenancy.<realm>..<id>)."
  }
}

variable "compartment_ocid" {
  type        = string
  description = "OCID of the compartment that holds everything this configuration creates. A compartment of its own is best: the scheduler grant is scoped to it."

  validation {
    condition     = can(regex("^ocid1\\.(compartment|tenancy)\\.[a-z0-9_-]+\\.[a-z0-9_-]*\\.[a-z0-9]+$", var.compartment_ocid))
    error_message = "compartment_ocid must be a compartment OCID (ocid1.compartment.<realm>..<id>)."
  }
}

variable "region" {
  type        = string
  description = "Region identifier the chain runs in, e.g. eu-frankfurt-1. Images must be in this region's registry."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+-[0-9]+$", var.region))
    error_message = "region must be a region identifier such as eu-frankfurt-1."
  }
}

variable "home_region" {
  type        = string
  description = "The tenancy's home region identifier; identity resources are written there."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+-[0-9]+$", var.home_region))
    error_message = "home_region must be a region identifier such as eu-frankfurt-1."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every name this configuration gives (functions, topics, bucket, policies)."
  default     = "fusion-extract"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name_prefix))
    error_message = "name_prefix must be 3-31 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "freeform_tags" {
  type        = map(string)
  description = "Free-form tags put on every resource that takes tags."
  default     = { "managed-by" = "terraform", "product" = "fusion-extract" }
}

# -- Network -------------------------------------------------------------------------------------

variable "subnet_ids" {
  type        = list(string)
  description = "Existing private subnet OCIDs for the application. Their route must reach Fusion (NAT gateway) and OCI services (service gateway). Leave empty to create a VCN (create_network = true)."
  default     = []

  validation {
    condition     = alltrue([for id in var.subnet_ids : can(regex("^ocid1\\.subnet\\.[a-z0-9_-]+\\.[a-z0-9_-]*\\.[a-z0-9]+$", id))])
    error_message = "subnet_ids must hold subnet OCIDs (ocid1.subnet.<realm>.<region>.<id>)."
  }
}

variable "create_network" {
  type        = bool
  description = "Create a VCN with a private subnet, a NAT gateway (Fusion is reached over the internet) and a service gateway (OCI services). Exactly one of create_network and subnet_ids is used."
  default     = false
}

variable "vcn_cidr" {
  type        = string
  description = "CIDR block of the VCN created when create_network is true."
  default     = "10.80.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vcn_cidr))
    error_message = "vcn_cidr must be an IPv4 CIDR block."
  }
}

variable "subnet_cidr" {
  type        = string
  description = "CIDR block of the private subnet created when create_network is true; inside vcn_cidr."
  default     = "10.80.1.0/24"

  validation {
    condition     = can(cidrnetmask(var.subnet_cidr))
    error_message = "subnet_cidr must be an IPv4 CIDR block."
  }
}

# -- Images and functions ------------------------------------------------------------------------

variable "images" {
  type = map(object({
    image  = string
    digest = string
  }))
  description = "Image of each function, pinned by digest: image = <region-key>.ocir.io/<namespace>/<repo>:<tag>, digest = sha256:<64 hex>. Keys: submit, poll, transfer."

  validation {
    condition     = toset(keys(var.images)) == toset(["submit", "poll", "transfer"])
    error_message = "images must have exactly the keys submit, poll and transfer."
  }
  validation {
    condition     = alltrue([for i in values(var.images) : can(regex("^sha256:[0-9a-f]{64}$", i.digest))])
    error_message = "Each digest must be sha256:<64 lower-case hex digits>."
  }
  validation {
    condition     = alltrue([for i in values(var.images) : can(regex("^[a-z0-9-]+\\.ocir\\.io/[^/]+/.+:[A-Za-z0-9_.-]+$", i.image))])
    error_message = "Each image must be an OCIR reference with a tag: <region-key>.ocir.io/<namespace>/<repo>:<tag>."
  }
}

variable "detached_timeout_seconds" {
  type        = map(number)
  description = "Detached-invocation timeout per function (5-3600 s). Schedules and Notifications invoke detached; submit and transfer may run past the 300 s sync limit."
  default     = { submit = 900, poll = 600, transfer = 3600 }

  validation {
    condition     = toset(keys(var.detached_timeout_seconds)) == toset(["submit", "poll", "transfer"])
    error_message = "detached_timeout_seconds must have exactly the keys submit, poll and transfer."
  }
  validation {
    condition     = alltrue([for t in values(var.detached_timeout_seconds) : t >= 5 && t <= 3600 && floor(t) == t])
    error_message = "Each detached timeout must be a whole number of seconds from 5 to 3600."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the application's invoke log, in 30-day steps (30-180)."
  default     = 30

  validation {
    condition     = contains([30, 60, 90, 120, 150, 180], var.log_retention_days)
    error_message = "log_retention_days must be one of 30, 60, 90, 120, 150, 180."
  }
}

# -- Fusion --------------------------------------------------------------------------------------

variable "fusion_base_url" {
  type        = string
  description = "Fusion pod base URL (FUSION_BASE_URL), https."

  validation {
    condition     = can(regex("^https://[^/\\s]+", var.fusion_base_url))
    error_message = "fusion_base_url must be an https:// URL."
  }
}

variable "idcs_url" {
  type        = string
  description = "Identity domain base URL (IDCS_URL), https; the token endpoint is /oauth2/v1/token under it."

  validation {
    condition     = can(regex("^https://[^/\\s]+", var.idcs_url))
    error_message = "idcs_url must be an https:// URL."
  }
}

variable "fusion_scope" {
  type        = string
  description = "OAuth scope (FUSION_SCOPE), urn:opc:resource:fusion:<env>:saas-batch/."

  validation {
    condition     = can(regex("^urn:opc:resource:fusion:[^:\\s]+:saas-batch/$", var.fusion_scope))
    error_message = "fusion_scope must look like urn:opc:resource:fusion:<env>:saas-batch/."
  }
}

variable "fusion_grant" {
  type        = string
  description = "OAuth grant (FUSION_GRANT): client_credentials, or password (then the secret also holds username and password)."
  default     = "client_credentials"

  validation {
    condition     = contains(["client_credentials", "password"], var.fusion_grant)
    error_message = "fusion_grant must be client_credentials or password."
  }
}

variable "credentials_json" {
  type        = string
  description = "Optional: the credentials JSON ({\"client_id\",\"client_secret\"[,\"username\",\"password\"]}) to store in the secret. Its value then lands in Terraform state. Leave null and set the secret with the oci CLI instead (see README)."
  default     = null
  sensitive   = true

  validation {
    condition     = var.credentials_json == null || can(jsondecode(var.credentials_json).client_id)
    error_message = "credentials_json must be a JSON object with at least client_id."
  }
}

# -- Storage and layout --------------------------------------------------------------------------

variable "bucket_name" {
  type        = string
  description = "Name of the landing bucket (BUCKET_NAME); null gives <name_prefix>-landing."
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[A-Za-z0-9_.-]{1,256}$", var.bucket_name))
    error_message = "bucket_name may hold letters, digits, '_', '.', '-' (1-256)."
  }
}

variable "landing_prefix" {
  type        = string
  description = "Root prefix of landed data (LANDING_PREFIX)."
  default     = "landing"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.=-]+(/[A-Za-z0-9_.=-]+)*$", var.landing_prefix)) && !contains(split("/", var.landing_prefix), "..")
    error_message = "landing_prefix must be a plain object-name prefix without leading or trailing '/' or '..'."
  }
}

variable "landing_template" {
  type        = string
  description = "Run folder template (LANDING_TEMPLATE); null keeps the product default {prefix}/{extract}/dt={date}/run={job_id}."
  default     = null

  validation {
    condition     = var.landing_template == null || can(regex("\\{job_id\\}", var.landing_template))
    error_message = "landing_template must contain {job_id} so that runs never share a folder."
  }
}

variable "state_prefix" {
  type        = string
  description = "Prefix of the run ledger (STATE_PREFIX); the ledger retention rule applies to it."
  default     = "_state"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+$", var.state_prefix))
    error_message = "state_prefix must be one path segment (letters, digits, '_', '.', '-')."
  }
}

variable "staging_prefix" {
  type        = string
  description = "Prefix where members wait before promotion (STAGING_PREFIX); leftovers are deleted after staging_retention_days."
  default     = "_staging"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+$", var.staging_prefix))
    error_message = "staging_prefix must be one path segment (letters, digits, '_', '.', '-')."
  }
}

variable "keep_raw_zips" {
  type        = bool
  description = "Also keep each downloaded ZIP under raw/ (KEEP_RAW_ZIPS)."
  default     = false
}

variable "log_level" {
  type        = string
  description = "Log level of the functions (LOG_LEVEL)."
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "ledger_retention_days" {
  type        = number
  description = "Days after its last change that a ledger document under <state_prefix>/ is deleted. Runs end within RUN_DEADLINE_HOURS, so keep this well above it."
  default     = 90

  validation {
    condition     = var.ledger_retention_days >= 7 && floor(var.ledger_retention_days) == var.ledger_retention_days
    error_message = "ledger_retention_days must be a whole number of at least 7."
  }
}

variable "staging_retention_days" {
  type        = number
  description = "Days after which members left under <staging_prefix>/ by a crashed transfer are deleted."
  default     = 7

  validation {
    condition     = var.staging_retention_days >= 2 && floor(var.staging_retention_days) == var.staging_retention_days
    error_message = "staging_retention_days must be a whole number of at least 2."
  }
}

variable "previous_version_retention_days" {
  type        = number
  description = "Days a previous (overwritten or deleted) object version is kept; the ledger's compare-and-swap writes leave one per update."
  default     = 30

  validation {
    condition     = var.previous_version_retention_days >= 1 && floor(var.previous_version_retention_days) == var.previous_version_retention_days
    error_message = "previous_version_retention_days must be a whole number of at least 1."
  }
}

variable "multipart_abort_days" {
  type        = number
  description = "Days after which an uncommitted multipart upload is aborted."
  default     = 2

  validation {
    condition     = var.multipart_abort_days >= 1 && floor(var.multipart_abort_days) == var.multipart_abort_days
    error_message = "multipart_abort_days must be a whole number of at least 1."
  }
}

# -- Behaviour (null keeps the product default, see README's configuration table) -----------------

variable "tuning" {
  type = object({
    http_connect_timeout    = optional(number)
    http_read_timeout       = optional(number)
    http_max_attempts       = optional(number)
    http_max_retry_seconds  = optional(number)
    run_deadline_hours      = optional(number)
    run_max_attempts        = optional(number)
    rerun_backoff_seconds   = optional(number)
    file_max_attempts       = optional(number)
    file_retry_seconds      = optional(number)
    poll_budget_seconds     = optional(number)
    poll_min_interval       = optional(number)
    poll_max_interval       = optional(number)
    step_overdue_seconds    = optional(number)
    lease_seconds           = optional(number)
    transfer_budget_seconds = optional(number)
    transfer_fanout         = optional(number)
    upload_part_mb          = optional(number)
    upload_parallelism      = optional(number)
    zip_max_entries         = optional(number)
    zip_max_bytes           = optional(number)
    zip_max_ratio           = optional(number)
    secret_ttl_seconds      = optional(number)
  })
  description = "Optional overrides of the product's behaviour settings, one per configuration key of the same upper-case name (e.g. run_deadline_hours -> RUN_DEADLINE_HOURS). Unset keys keep the product default."
  default     = {}

  validation {
    condition     = alltrue([for v in values(var.tuning) : v == null ? true : v > 0])
    error_message = "Every tuning value must be a positive number."
  }
  validation {
    condition     = var.tuning.transfer_budget_seconds == null ? true : var.tuning.transfer_budget_seconds < 3500
    error_message = "transfer_budget_seconds must stay below the transfer's detached timeout (3600 s at most), with room to save its progress."
  }
  validation {
    condition     = var.tuning.poll_budget_seconds == null ? true : var.tuning.poll_budget_seconds < 290
    error_message = "poll_budget_seconds must stay below the 300 s sync limit, with room to publish the continuation."
  }
}

# -- Runs ----------------------------------------------------------------------------------------

variable "extracts" {
  type = map(object({
    mode            = string
    recurrence      = string
    recurrence_type = optional(string, "ICAL")
    time_zone       = optional(string, "UTC")
    enabled         = optional(bool, true)
    # The extract's own run folder template (LANDING_TEMPLATE's placeholders); null: LANDING_TEMPLATE.
    landing_template = optional(string)
    # The extract's service level: each scheduled run lands within this many hours of its scheduled start
    # (in time_zone). Past it, the sweep alerts `late` and the extract's late alarm fires (1 to 744 hours).
    expected_within_hours = optional(number, 4)
  }))
  description = "The extract catalog: one entry per extract this deployment runs, keyed by its name as defined in Fusion: mode (full|incremental), recurrence (an RFC 5545 RRULE such as FREQ=DAILY;BYHOUR=2;BYMINUTE=0, or a cron expression with recurrence_type = CRON), IANA time_zone, enabled, landing_template, expected_within_hours. It builds the schedules, the late alarms and the catalog object the functions read (EXTRACT_CATALOG_OBJECT), which submit checks every request against."
  default     = {}

  validation {
    condition     = alltrue([for name in keys(var.extracts) : can(regex("^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$", name))])
    error_message = "Extract names may hold letters, digits, space, '_', '.', '-' (up to 100), starting with a letter or digit."
  }
  validation {
    condition     = alltrue([for e in values(var.extracts) : contains(["full", "incremental"], e.mode)])
    error_message = "Each extract's mode must be full or incremental."
  }
  validation {
    condition     = alltrue([for e in values(var.extracts) : contains(["ICAL", "CRON"], e.recurrence_type)])
    error_message = "Each extract's recurrence_type must be ICAL or CRON."
  }
  validation {
    condition     = alltrue([for e in values(var.extracts) : e.expected_within_hours > 0 && e.expected_within_hours <= 744])
    error_message = "Each extract's expected_within_hours must be above 0 and at most 744 (a month)."
  }
  validation {
    condition     = alltrue([for e in values(var.extracts) : e.landing_template == null || can(regex("\\{job_id\\}", e.landing_template))])
    error_message = "A landing_template must contain {job_id}, so that runs never share a folder."
  }
}

variable "sweep_recurrence" {
  type        = string
  description = "Cron expression of the sweep schedule (poll {\"kind\":\"sweep\"}). Every 5 minutes by default; the service's minimum interval is not documented (see README)."
  default     = "*/5 * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.sweep_recurrence))) == 5
    error_message = "sweep_recurrence must be a five-field cron expression."
  }
}

variable "alert_emails" {
  type        = list(string)
  description = "E-mail addresses subscribed to the alerts topic (each must confirm the subscription)."
  default     = []

  validation {
    condition     = alltrue([for e in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "alert_emails must hold e-mail addresses."
  }
}

variable "alarms_enabled" {
  type        = bool
  description = "Create the Monitoring alarms (failed and timed-out runs, an overdue alarm per enabled extract, the sweep falling silent), routed to the alerts topic."
  default     = true
}
