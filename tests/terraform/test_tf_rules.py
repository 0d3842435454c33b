"""Project rules for terraform/: every function is sized and timed, its configuration is exactly what
the code reads, every grant is least privilege, every input is typed, described and checked."""

import re
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from fusion_extract.config import KEYS
from tests.terraform import tfcheck
from tests.terraform.conftest import TERRAFORM

FUNCTIONS = TERRAFORM.parent / "functions"
STEPS = ("submit", "poll", "transfer")
SYNC_LIMIT, DETACHED_LIMIT = 300, 3600


def _config_keys(config: tfcheck.Config) -> dict[str, str]:
    local = config.locals()
    assert (
        local["function_config_all"]
        == "${merge(local.function_config_planned, local.function_config_created)}"
    )
    return {**local["function_config_planned"], **local["function_config_created"]}


def _function(config: tfcheck.Config) -> dict[str, Any]:
    return config.resource("oci_functions_function", "this")


# -- functions ---------------------------------------------------------------------------------------


def test_functions_are_stamped_from_one_block_for_the_three_steps(config):
    # Given the functions resource and the locals it iterates
    function = _function(config)
    steps = config.texts["locals.tf"]

    # Then one for_each block makes submit, poll and transfer, named fusion-extract-<step>
    assert function["for_each"] == "${local.functions}"
    assert 'for name in ["submit", "poll", "transfer"]' in steps
    assert 'display_name     = "${var.name_prefix}-${name}"' in steps
    assert config.variables()["name_prefix"]["default"] == "fusion-extract"


def test_every_function_has_memory_timeout_and_detached_timeout(config):
    # Given the functions resource
    function = _function(config)

    # Then memory, the sync timeout and the detached timeout are all set, and the image is pinned
    for argument in ("memory_in_mbs", "timeout_in_seconds", "detached_mode_timeout_in_seconds"):
        assert function.get(argument), f"{argument} is not set"
    assert function["image"] == "${each.value.image}"
    assert function["image_digest"] == "${each.value.image_digest}"


@pytest.mark.parametrize("step", STEPS)
def test_func_yaml_gives_memory_and_a_sync_timeout_within_the_limit(step):
    # Given the func.yaml Terraform reads memory and timeout from
    spec = yaml.safe_load((FUNCTIONS / step / "func.yaml").read_text())

    # Then both are there and valid for OCI Functions
    assert spec["memory"] in (128, 256, 512, 1024, 2048, 3072)
    assert 0 < spec["timeout"] <= SYNC_LIMIT


def test_detached_timeouts_let_submit_and_transfer_outlive_the_sync_limit(config):
    # Given the default detached timeouts
    defaults = config.variables()["detached_timeout_seconds"]["default"]

    # Then every step has one within the platform's range, and the long steps exceed 300 s
    assert set(defaults) == set(STEPS)
    assert all(5 <= value <= DETACHED_LIMIT for value in defaults.values())
    assert defaults["submit"] > SYNC_LIMIT and defaults["transfer"] > SYNC_LIMIT


def test_failed_detached_invocations_are_reported_to_the_alerts_topic(config):
    # Given the functions resource
    destination = _function(config)["failure_destination"]

    # Then a failed detached invocation's record goes to the alerts topic
    assert destination[0]["kind"] == "NOTIFICATION"
    assert destination[0]["topic_id"] == '${oci_ons_notification_topic.this["alerts"].id}'


# -- configuration -------------------------------------------------------------------------------------


def test_function_config_sets_every_required_key_the_code_reads(config):
    # Given the keys Terraform sets and the product's table of keys
    terraform_keys = set(_config_keys(config))
    required = {key.env for key in KEYS if key.default is None and not key.optional}

    # Then every required key is set
    assert required - terraform_keys == set()


def test_function_config_sets_no_key_the_code_does_not_know(config):
    # Given the keys Terraform sets and the product's table of keys
    terraform_keys = set(_config_keys(config))
    known = {key.env for key in KEYS}

    # Then each is a key the code reads, spelled the same
    assert terraform_keys - known == set()


def test_function_config_leaves_emulator_overrides_unset(config):
    # Given the keys Terraform sets
    terraform_keys = set(_config_keys(config))

    # Then no endpoint override or local-auth key reaches the cloud
    assert {k for k in terraform_keys if k.endswith("_ENDPOINT") or k.startswith("OCI_")} == set()


def test_function_config_drops_unset_values_and_is_given_to_every_function(config):
    # Given the config locals and the functions resource
    filtered = config.locals()["function_config"]

    # Then a null value is left out (the product default applies) and every function gets the map
    assert (
        filtered
        == "${{for key, value in local.function_config_all : key => tostring(value) if value != null}}"
    )
    assert _function(config)["config"] == "${local.function_config}"


def test_tuning_fields_are_named_after_the_keys_they_set(config):
    # Given the tuning variable's fields and the config entries that read them
    fields = set(re.findall(r"^\s+([a-z_]+)\s+= optional\(number\)", config.texts["variables.tf"], re.M))
    entries = {
        key: value.removeprefix("${var.tuning.").removesuffix("}")
        for key, value in _config_keys(config).items()
        if value.startswith("${var.tuning.")
    }

    # Then each field sets the key of its upper-case name, and every field is used
    assert all(key == field.upper() for key, field in entries.items()), entries
    assert set(entries.values()) == fields


def test_broken_copy_with_an_unknown_config_key_is_reported(broken_copy):
    # Given a copy whose config names a key the code does not read
    broken = broken_copy("locals.tf", "LOG_LEVEL               =", "LOGLEVEL                =")

    # When its keys are compared with the code's
    unknown = set(_config_keys(broken)) - {key.env for key in KEYS}

    # Then the misspelt key is found
    assert unknown == {"LOGLEVEL"}


def test_broken_copy_missing_a_required_config_key_is_reported(broken_copy):
    # Given a copy that no longer sets the credentials secret
    broken = broken_copy("locals.tf", "    CREDENTIALS_SECRET_ID = oci_vault_secret.credentials.id\n", "")

    # When its keys are compared with the code's required keys
    required = {key.env for key in KEYS if key.default is None and not key.optional}

    # Then the missing key is found
    assert required - set(_config_keys(broken)) == {"CREDENTIALS_SECRET_ID"}


# -- IAM -------------------------------------------------------------------------------------------------


def test_every_policy_statement_names_only_our_group_and_our_resources(config):
    # Given every IAM statement in terraform/
    statements = tfcheck.policy_statements(config)

    # When each is checked against the least-privilege rules
    problems = tfcheck.check_policies(config)

    # Then all pass, and all the grants the chain needs are there
    assert problems == []
    granted = {s.split(" to ", 1)[1].split(" in ", 1)[0] for _, s in statements}
    assert granted == {
        "manage objects",
        "read secret-bundles",
        "use ons-topics",
        "use metrics",
        "use keys",
        "manage object-family",
        "manage functions-family",
    }


def test_unproven_grants_are_the_documented_superset_and_the_guide_says_what_to_tighten(config):
    # Given the three grants no document settles: topic conditions, failure records, schedules
    statements = [s for _, s in tfcheck.policy_statements(config)]
    guide = (TERRAFORM.parent / "docs" / "deploy.md").read_text()

    # Then topics are granted compartment-wide, to the functions and to the Functions service (faas) ...
    topics = [s for s in statements if "ons-topics" in s]
    assert [s.split(" to ")[0] for s in topics] == [
        "Allow dynamic-group ${oci_identity_dynamic_group.functions.name}",
        "Allow service faas",
    ]
    assert all(" where " not in s for s in topics)
    # ... schedules manage functions-family as Resource Scheduler documents, through a dynamic group ...
    assert any("schedules.name} to manage functions-family" in s for s in statements)
    # ... and every iam.tf statement has its document cited, and the guide says how to narrow each
    assert config.texts["iam.tf"].count("htm") >= len(statements)
    tighten = guide.split("## IAM: what to tighten", 1)[1]
    for narrower in ("target.topic.id", "service faas", "resource.id", "fn-invocation"):
        assert narrower in tighten, narrower


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "to read secret-bundles in ${local.compartment} where target.secret.id",
            "to manage all-resources in tenancy where target.secret.id",
            "scope must be our compartment",
            id="manage-all-resources-in-tenancy",
        ),
        pytest.param(
            "to manage objects in ${local.compartment} where target.bucket.name = '${local.bucket_name}'\"",
            'to manage objects in ${local.compartment}"',
            "where-clause does not name our objects",
            id="objects-in-any-bucket",
        ),
        pytest.param(
            "Allow service faas to use ons-topics",
            "Allow service faas to manage objects",
            "may not be granted 'objects'",
            id="service-granted-what-it-does-not-deliver",
        ),
        pytest.param(
            "to read secret-bundles",
            "to read secret-family",
            "is not one this product needs",
            id="secret-family",
        ),
        pytest.param(
            "to use metrics",
            "to manage metrics",
            "verb 'manage' is broader",
            id="broader-verb",
        ),
        pytest.param(
            '"Allow ${local.group} to manage objects',
            '"Allow group Administrators to manage objects',
            "not ours",
            id="someone-elses-group",
        ),
        pytest.param(
            "resource.type = 'resourceschedule', resource.compartment.id = '${var.compartment_ocid}'",
            "resource.type = 'resourceschedule'",
            "matching rule must name exactly schedules in our compartment",
            id="schedules-of-every-compartment",
        ),
        pytest.param(
            "to manage functions-family in ${local.compartment}",
            "to manage functions-family in ${local.compartment} where all {request.principal.type = 'x'}",
            "where-clause does not name our functions-family",
            id="schedule-grant-with-an-unchecked-condition",
        ),
        pytest.param(
            "resource.id = '${oci_functions_function.this[name].id}'",
            "resource.type = 'fnfunc'",
            "matching rule must name exactly our functions",
            id="dynamic-group-matches-every-function",
        ),
        pytest.param(
            'resource "oci_identity_policy" "scheduler" {\n  provider = oci.home\n',
            'resource "oci_identity_policy" "scheduler" {\n',
            "must use provider = oci.home",
            id="policy-outside-home-region",
        ),
    ],
)
def test_broken_copy_with_a_broad_grant_is_reported(broken_copy, old, new, expected):
    # Given a copy of iam.tf with one grant made broader
    broken = broken_copy("iam.tf", old, new)

    # When its policies are checked
    problems = tfcheck.check_policies(broken)

    # Then the broad grant is named
    assert any(expected in problem for problem in problems), problems


def test_statement_added_in_another_file_is_checked_too(broken_copy):
    # Given a copy with a stray policy in another file
    stray = (
        'resource "oci_identity_policy" "stray" {\n  provider       = oci.home\n'
        '  compartment_id = var.compartment_ocid\n  name           = "stray"\n  description    = "stray"\n'
        '  statements     = ["Allow any-user to manage object-family in tenancy"]\n}\n'
    )
    broken = broken_copy("outputs.tf", 'output "application_id" {', stray + 'output "application_id" {')

    # When its policies are checked
    problems = tfcheck.check_policies(broken)

    # Then both the statement and the unchecked list are reported
    assert any(p.startswith("outputs.tf: scope must be our compartment") for p in problems), problems
    assert any("oci_identity_policy.stray: statements must come from" in p for p in problems)


# -- inputs ----------------------------------------------------------------------------------------------


def test_every_variable_is_typed_described_and_placeless_ones_have_no_default(config):
    # Given every variable
    variables = config.variables()

    # Then each has a type and a description, and nothing guesses where to deploy
    assert [name for name, v in variables.items() if not v.get("type") or not v.get("description")] == []
    for name in ("tenancy_ocid", "compartment_ocid", "region", "home_region", "images", "fusion_base_url"):
        assert "default" not in variables[name], name


@pytest.mark.parametrize(("name", "kind"), [("tenancy_ocid", "tenancy"), ("compartment_ocid", "compartment")])
def test_ocid_variables_are_checked_for_shape(config, name, kind):
    # Given an OCID variable's validation
    condition = config.variables()[name]["validation"][0]["condition"]

    # Then it checks the ocid1.<type>. shape
    assert "regex(" in condition and f"ocid1\\\\.{kind}" in condition.replace("(compartment|tenancy)", kind)


def test_example_tfvars_sets_only_declared_variables_and_every_required_one(config):
    # Given the example a person fills in
    with (TERRAFORM / "examples" / "example.tfvars").open() as handle:
        example = hcl2.load(handle, serialization_options=hcl2.SerializationOptions(strip_string_quotes=True))
    variables = config.variables()

    # Then it names only declared variables, and every variable without a default
    given = {k for k in example if not k.startswith("__")}
    assert given - set(variables) == set()
    assert {name for name, v in variables.items() if "default" not in v} - given == set()


# -- wiring ----------------------------------------------------------------------------------------------


def test_topics_invoke_the_functions_the_chain_expects(config):
    # Given the function subscriptions
    targets = config.locals()["topic_targets"]
    subscription = config.resource("oci_ons_subscription", "function")

    # Then poll -> poll, transfer -> transfer, rerun -> submit, through ORACLE_FUNCTIONS
    assert targets == {"poll": "poll", "transfer": "transfer", "rerun": "submit"}
    assert subscription["protocol"] == "ORACLE_FUNCTIONS"
    assert subscription["endpoint"] == "${oci_functions_function.this[each.value].id}"


def test_schedules_send_the_submit_payload_and_the_sweep(config):
    # Given the extract and sweep schedules
    extract = config.resource("oci_resource_scheduler_schedule", "extract")
    sweep = config.resource("oci_resource_scheduler_schedule", "sweep")

    # Then each extract starts submit with {"extract", "mode"}; the sweep starts poll with {"kind": "sweep"}
    assert extract["resources"][0]["id"] == '${oci_functions_function.this["submit"].id}'
    assert extract["resources"][0]["parameters"][0] == {
        "parameter_type": "BODY",
        "value": ["${jsonencode({extract = each.key, mode = each.value.mode})}"],
        "__is_block__": True,
    }
    assert sweep["resources"][0]["id"] == '${oci_functions_function.this["poll"].id}'
    assert sweep["resources"][0]["parameters"][0]["value"] == ['${jsonencode({kind = "sweep"})}']
    assert extract["action"] == sweep["action"] == "START_RESOURCE"


def test_versions_pin_a_provider_that_documents_every_argument_used(config):
    # Given the provider requirement
    required = config.files["versions.tf"]["terraform"][0]["required_providers"][0]["oci"]

    # Then it is oracle/oci from 8.27.0 (local_time_zone; BODY fix 8.20.0; detached timeout 7.21.0)
    assert required["source"] == "oracle/oci"
    assert required["version"].startswith(">= 8.27.0")


def test_no_tf_file_outside_the_module_root():
    # Given the terraform folder
    stray = [p for p in Path(TERRAFORM).rglob("*.tf") if p.parent != TERRAFORM]

    # Then every .tf file is one the checks read
    assert stray == []


# -- the deploy guide ---------------------------------------------------------------------------------------

PLACEHOLDERS = {
    "${oci_identity_dynamic_group.functions.name}": "fusion-extract-functions",
    "${oci_identity_dynamic_group.schedules.name}": "fusion-extract-schedules",
    "${var.compartment_ocid}": "<compartment OCID>",
    "${local.bucket_name}": "<bucket>",
    "${oci_vault_secret.credentials.id}": "<secret OCID>",
    "${var.region}": "<region>",
    "${oci_kms_key.this.id}": "<key OCID>",
}


def _rendered(config: tfcheck.Config) -> set[str]:
    statements = set()
    for _, template in tfcheck.policy_statements(config):
        for placeholder, text in PLACEHOLDERS.items():
            template = template.replace(placeholder, text)
        statements.add(template)
    return statements


def test_deploy_guide_lists_exactly_the_statements_terraform_grants(config):
    # Given the IAM statements in the deploy guide, for people who cannot use Terraform
    guide = (TERRAFORM.parent / "docs" / "deploy.md").read_text()
    documented = {line.strip() for line in guide.splitlines() if line.startswith("Allow ")}

    # Then they are Terraform's statements with placeholders, no more and no fewer
    assert documented == _rendered(config)


# -- operating: the catalog and the alarms ----------------------------------------------------------------


def test_catalog_is_built_from_the_extracts_map_that_builds_the_schedules(config):
    # Given the function configuration and the extract schedules
    keys = _config_keys(config)
    catalog = config.locals()["extract_catalog"]
    schedules = config.resource("oci_resource_scheduler_schedule", "extract")

    # Then the catalog is encoded from var.extracts, the same map the schedules iterate, and travels as an
    # object of the bucket the configuration names, its name a hash of its content, replaced new-first
    obj = config.resource("oci_objectstorage_object", "catalog")
    assert keys["EXTRACT_CATALOG_OBJECT"] == "${oci_objectstorage_object.catalog.object}"
    assert obj["content"] == "${local.extract_catalog}" and obj["object"] == "${local.catalog_object}"
    assert "sha256(local.extract_catalog)" in config.locals()["catalog_object"]
    assert obj["lifecycle"][0]["create_before_destroy"] is True
    assert (
        "var.extracts" in catalog and "landing_template" in catalog and "schedule = e.recurrence" in catalog
    )
    assert schedules["for_each"] == "${var.extracts}"
    # And metrics go to the deployment's compartment
    assert keys["METRICS_COMPARTMENT_ID"] == "${var.compartment_ocid}"


def test_alarms_reach_the_alerts_topic_in_the_products_namespace(config):
    # Given the alarms (what each query means is evaluated in test_alarms.py)
    alarms = [body for _, kind, _, body in config.blocks("resource") if kind == "oci_monitoring_alarm"]

    # Then each notifies the alerts topic and reads the product's metric namespace
    assert len(alarms) == 3
    assert all(body["destinations"] == "${local.alarm_destination}" for body in alarms)
    assert all(body["namespace"] == "fusion_extract" for body in alarms)
    assert config.locals()["alarm_destination"] == ['${oci_ons_notification_topic.this["alerts"].id}']
