"""The chain itself, by phase: the run ledger (ledger/), landing a file (transfer/), what every step does to
a run besides its own work (runs/: alerts, hand-off, endings, finishing), the steps (steps/), and what they
all share: messages, alerts' text, outcomes, the failure policy."""
