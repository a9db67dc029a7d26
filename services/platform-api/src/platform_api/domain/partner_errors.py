"""Refusals of the partner integrations. ``http/errors.py`` maps each class to a catalogue code; the
partner's own failures are ``ApiError`` of the adapter (``adapters/chainabit.py``)."""

from __future__ import annotations


class PartnerError(Exception):
    """The base of every refusal about partners."""


class UnknownPartner(PartnerError):
    """No partner integration of that name."""


class PartnerNotProvisioned(PartnerError):
    """The lenser has no completed provisioning with this partner."""
