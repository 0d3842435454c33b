"""Build and deploy helpers run by the Makefile (not part of the product package)."""
