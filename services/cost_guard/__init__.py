"""The cost-guard: spend ledger, budgets, per-user and per-key limits, runaway detection, kill switch."""
