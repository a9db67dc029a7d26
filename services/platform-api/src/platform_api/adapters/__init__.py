"""Clients of other systems (execution-proxy, Chainabit) arrive with runs and partners."""
