"""The chain itself, by phase: the run ledger (ledger/), landing a file (transfer/), the steps (steps/), and
what they share: messages, alerts, outcomes, the failure policy."""
