"""Specifications of the chain's steps and ledger, run in-process on a manual clock against the emulators."""
