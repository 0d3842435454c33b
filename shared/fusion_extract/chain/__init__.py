"""The chain itself: messages, the run ledger, and the submit / poll / transfer steps."""
