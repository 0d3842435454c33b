# Credentials come from the environment or ~/.oci/config (never from variables or state).
provider "oci" {
  region = var.region
}

# Identity resources (dynamic group, policies) are written in the tenancy's home region.
provider "oci" {
  alias  = "home"
  region = var.home_region
}
