locals {
  bucket_name = coalesce(var.bucket_name, "${var.name_prefix}-landing")
  topics      = toset(["poll", "transfer", "rerun", "alerts"])

  # The three functions, stamped from one block. Memory and the sync timeout come from each
  # function's func.yaml (one source of truth with fn); the detached timeout is not a func.yaml field.
  functions = {
    for name in ["submit", "poll", "transfer"] : name => {
      display_name     = "${var.name_prefix}-${name}"
      spec             = yamldecode(file("${path.module}/../functions/${name}/func.yaml"))
      detached_timeout = var.detached_timeout_seconds[name]
      image            = var.images[name].image
      image_digest     = var.images[name].digest
    }
  }

  # Function configuration, keyed by the exact environment names the code reads
  # (fusion_extract.config.KEYS; tests/terraform checks the two against each other).
  # A null value is left out, so the product's own default applies.
  function_config_all = merge(local.function_config_planned, local.function_config_created)

  # The OCIDs that exist only once apply created them.
  function_config_created = {
    CREDENTIALS_SECRET_ID = oci_vault_secret.credentials.id
    POLL_TOPIC_ID         = oci_ons_notification_topic.this["poll"].id
    TRANSFER_TOPIC_ID     = oci_ons_notification_topic.this["transfer"].id
    RERUN_TOPIC_ID        = oci_ons_notification_topic.this["rerun"].id
    ALERTS_TOPIC_ID       = oci_ons_notification_topic.this["alerts"].id
  }

  # What plan knows already: variables, names, the namespace.
  function_config_planned = {
    FUSION_BASE_URL         = var.fusion_base_url
    IDCS_URL                = var.idcs_url
    FUSION_SCOPE            = var.fusion_scope
    FUSION_GRANT            = var.fusion_grant
    BUCKET_NAME             = oci_objectstorage_bucket.landing.name
    BUCKET_NAMESPACE        = data.oci_objectstorage_namespace.this.namespace
    LANDING_PREFIX          = var.landing_prefix
    LANDING_TEMPLATE        = var.landing_template
    STATE_PREFIX            = var.state_prefix
    STAGING_PREFIX          = var.staging_prefix
    KEEP_RAW_ZIPS           = tostring(var.keep_raw_zips)
    LOG_LEVEL               = var.log_level
    HTTP_CONNECT_TIMEOUT    = var.tuning.http_connect_timeout
    HTTP_READ_TIMEOUT       = var.tuning.http_read_timeout
    HTTP_MAX_ATTEMPTS       = var.tuning.http_max_attempts
    HTTP_MAX_RETRY_SECONDS  = var.tuning.http_max_retry_seconds
    RUN_DEADLINE_HOURS      = var.tuning.run_deadline_hours
    RUN_MAX_ATTEMPTS        = var.tuning.run_max_attempts
    RERUN_BACKOFF_SECONDS   = var.tuning.rerun_backoff_seconds
    FILE_MAX_ATTEMPTS       = var.tuning.file_max_attempts
    FILE_RETRY_SECONDS      = var.tuning.file_retry_seconds
    POLL_BUDGET_SECONDS     = var.tuning.poll_budget_seconds
    POLL_MIN_INTERVAL       = var.tuning.poll_min_interval
    POLL_MAX_INTERVAL       = var.tuning.poll_max_interval
    STEP_OVERDUE_SECONDS    = var.tuning.step_overdue_seconds
    LEASE_SECONDS           = var.tuning.lease_seconds
    TRANSFER_BUDGET_SECONDS = var.tuning.transfer_budget_seconds
    TRANSFER_FANOUT         = var.tuning.transfer_fanout
    UPLOAD_PART_MB          = var.tuning.upload_part_mb
    UPLOAD_PARALLELISM      = var.tuning.upload_parallelism
    ZIP_MAX_ENTRIES         = var.tuning.zip_max_entries
    ZIP_MAX_BYTES           = var.tuning.zip_max_bytes
    ZIP_MAX_RATIO           = var.tuning.zip_max_ratio
    SECRET_TTL_SECONDS      = var.tuning.secret_ttl_seconds
    EXTRACT_CATALOG_OBJECT  = oci_objectstorage_object.catalog.object
    METRICS_COMPARTMENT_ID  = var.compartment_ocid
  }

  # OCI takes at most 4 KB (4096 octets) of function configuration, keys and values in UTF-8 together.
  # Octets from base64: 3 per 4 characters, less the padding. Each OCID apply creates counts as
  # created_ocid_octets (real ones are about 90), so plan knows the total before anything is created.
  config_limit_octets  = 4096
  created_ocid_octets  = 128
  function_config_text = join("", [for key, value in local.function_config_planned : "${key}${value}" if value != null])
  function_config_octets = (
    length(base64encode(local.function_config_text)) / 4 * 3 - length(regexall("=", base64encode(local.function_config_text)))
    + sum([for key in keys(local.function_config_created) : length(key) + local.created_ocid_octets])
  )

  # The catalog the functions and the CLI read (fusion_extract.catalog), from the same map as the
  # schedules: an object in the bucket (storage.tf), any size; configuration only names it.
  extract_catalog = jsonencode({
    for name, e in var.extracts : name => merge(
      {
        mode                  = e.mode
        schedule              = e.recurrence
        recurrence_type       = e.recurrence_type
        time_zone             = e.time_zone
        enabled               = e.enabled
        expected_within_hours = e.expected_within_hours
      },
      e.landing_template == null ? {} : { landing_template = e.landing_template },
    )
  })
  function_config = { for key, value in local.function_config_all : key => tostring(value) if value != null }

  # Named by a hash of its content: a changed catalog is changed configuration, so every warm container
  # reads the new one. Outside state_prefix, whose lifecycle rule deletes what sits unchanged.
  catalog_object = "_catalog/extracts-${substr(sha256(local.extract_catalog), 0, 16)}.json"

  subnet_ids = var.create_network ? [oci_core_subnet.functions[0].id] : var.subnet_ids
}
