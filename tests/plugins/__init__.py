"""Test-only extensions of compressctl, loaded as a user's would be (core.registry); compressctl names none."""
