"""terraform/ is checked against the OCI provider's schema, offline: types, arguments, nested blocks,
required arguments and references. A copy broken in any of these ways is reported."""

import json

import pytest

from tests.terraform import tfcheck


def test_terraform_as_written_has_no_schema_problems(config):
    # Given every .tf file of terraform/
    # When it is checked against the derived provider schema
    problems = tfcheck.check_schema(config)

    # Then nothing is reported
    assert problems == []


def test_schema_fixture_covers_exactly_the_types_used(config):
    # Given the committed schema fixture
    schema = json.loads(tfcheck.SCHEMA_PATH.read_text())

    # When the resource and data source types used by terraform/ are listed
    used_resources = {t for _, t, _, _ in config.blocks("resource")}
    used_data = {t for _, t, _, _ in config.blocks("data")}

    # Then the fixture holds those and no others (make tf-schema regenerates it)
    assert set(schema["resources"]) == used_resources
    assert set(schema["data_sources"]) == used_data
    assert schema["provider_version"] == "7.19.0"


def test_allow_list_names_only_arguments_the_binding_lacks():
    # Given the arguments allowed beyond the 7.19.0 binding
    schema = json.loads(tfcheck.SCHEMA_PATH.read_text())["resources"]

    # When each is looked up in the binding's own schema
    already_known = [
        f"{type_name}.{name}"
        for type_name, extra in tfcheck.NEWER_THAN_BINDING.items()
        for name in extra
        if type_name in schema
        and (name in schema[type_name]["arguments"] or name in schema[type_name]["blocks"])
    ]

    # Then none is there already (the allow-list stays short and honest)
    assert already_known == []


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        pytest.param(
            "storage.tf",
            'access_type           = "NoPublicAccess"',
            'acces_type            = "NoPublicAccess"',
            "oci_objectstorage_bucket.landing: unknown argument or block 'acces_type'",
            id="unknown-argument",
        ),
        pytest.param(
            "functions.tf",
            "  memory_in_mbs                    = each.value.spec.memory\n",
            "",
            "oci_functions_function.this: missing required 'memory_in_mbs'",
            id="missing-required-argument",
        ),
        pytest.param(
            "vault.tf",
            "  key_shape {",
            "  key_shapes {",
            "oci_kms_key.this: unknown argument or block 'key_shapes'",
            id="unknown-block",
        ),
        pytest.param(
            "vault.tf",
            '    algorithm = "AES"\n',
            "",
            "oci_kms_key.this.key_shape: missing required 'algorithm'",
            id="missing-required-nested-argument",
        ),
        pytest.param(
            "schedules.tf",
            '      parameter_type = "BODY"',
            '      parameter_kind = "BODY"',
            "schedule.extract.resources.parameters: unknown argument or block 'parameter_kind'",
            id="unknown-nested-argument",
        ),
        pytest.param(
            "vault.tf",
            "management_endpoint = oci_kms_vault.this.management_endpoint",
            "management_endpoint = oci_kms_vault.this.managment_endpoint",
            "reference oci_kms_vault.this.managment_endpoint: oci_kms_vault has no 'managment_endpoint'",
            id="bad-attribute-reference",
        ),
        pytest.param(
            "functions.tf",
            "application_id                   = oci_functions_application.this.id",
            "application_id                   = oci_functions_application.app.id",
            "reference oci_functions_application.app: no such resource",
            id="reference-to-undeclared-resource",
        ),
        pytest.param(
            "schedules.tf",
            'resource "oci_resource_scheduler_schedule" "sweep"',
            'resource "oci_resource_scheduler_schedules" "sweep"',
            "unknown resource type 'oci_resource_scheduler_schedules'",
            id="unknown-resource-type",
        ),
        pytest.param(
            "functions.tf",
            "subnet_ids     = local.subnet_ids",
            "subnet_ids     = local.subnets",
            "reference local.subnets: no such local",
            id="undeclared-local",
        ),
        pytest.param(
            "logging.tf",
            "retention_duration = var.log_retention_days",
            "retention_duration = var.log_retention",
            "reference var.log_retention: no such variable",
            id="undeclared-variable",
        ),
        pytest.param(
            "functions.tf",
            '  failure_destination {\n    kind     = "NOTIFICATION"\n',
            "  failure_destination {\n",
            "oci_functions_function.this.failure_destination: missing required 'kind'",
            id="allow-listed-block-still-checked",
        ),
    ],
)
def test_broken_copy_is_reported(broken_copy, file, old, new, expected):
    # Given a copy of terraform/ with one deliberate mistake
    broken = broken_copy(file, old, new)

    # When the copy is checked
    problems = tfcheck.check_schema(broken)

    # Then the mistake is named
    assert any(expected in problem for problem in problems), problems
