"""The run ledger: documents in the bucket, their codec, and the state machines they obey."""
