# Optional network (create_network = true): a private subnet whose default route leaves through a NAT
# gateway (Fusion and the identity domain are on the internet) and whose OCI-service traffic (Object
# Storage, Vault, Notifications, registry) stays on the service gateway. No ingress is allowed.

data "oci_core_services" "all" {
  count = var.create_network ? 1 : 0

  filter {
    name   = "name"
    values = ["All .* Services In Oracle Services Network"]
    regex  = true
  }
}

resource "oci_core_vcn" "this" {
  count = var.create_network ? 1 : 0

  compartment_id = var.compartment_ocid
  display_name   = var.name_prefix
  cidr_blocks    = [var.vcn_cidr]
  dns_label      = "fnextract"
  freeform_tags  = var.freeform_tags
}

resource "oci_core_nat_gateway" "this" {
  count = var.create_network ? 1 : 0

  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this[0].id
  display_name   = "${var.name_prefix}-nat"
  freeform_tags  = var.freeform_tags
}

resource "oci_core_service_gateway" "this" {
  count = var.create_network ? 1 : 0

  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this[0].id
  display_name   = "${var.name_prefix}-services"
  freeform_tags  = var.freeform_tags

  services {
    service_id = data.oci_core_services.all[0].services[0].id
  }
}

resource "oci_core_route_table" "private" {
  count = var.create_network ? 1 : 0

  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this[0].id
  display_name   = "${var.name_prefix}-private"
  freeform_tags  = var.freeform_tags

  route_rules {
    destination       = data.oci_core_services.all[0].services[0].cidr_block
    destination_type  = "SERVICE_CIDR_BLOCK"
    network_entity_id = oci_core_service_gateway.this[0].id
  }

  route_rules {
    destination       = "0.0.0.0/0"
    destination_type  = "CIDR_BLOCK"
    network_entity_id = oci_core_nat_gateway.this[0].id
  }
}

resource "oci_core_security_list" "private" {
  count = var.create_network ? 1 : 0

  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this[0].id
  display_name   = "${var.name_prefix}-egress-only"
  freeform_tags  = var.freeform_tags

  egress_security_rules {
    destination = "0.0.0.0/0"
    protocol    = "6" # TCP: https to Fusion, the identity domain and OCI services
    description = "HTTPS out"

    tcp_options {
      min = 443
      max = 443
    }
  }
}

resource "oci_core_subnet" "functions" {
  count = var.create_network ? 1 : 0

  compartment_id             = var.compartment_ocid
  vcn_id                     = oci_core_vcn.this[0].id
  display_name               = "${var.name_prefix}-functions"
  cidr_block                 = var.subnet_cidr
  dns_label                  = "functions"
  prohibit_public_ip_on_vnic = true
  route_table_id             = oci_core_route_table.private[0].id
  security_list_ids          = [oci_core_security_list.private[0].id]
  freeform_tags              = var.freeform_tags
}
