"""lightning-jobs: Lightning-paid agent jobs and pre-funded sessions (seed 002)."""
