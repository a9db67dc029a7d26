"""The error catalogue: defined once, and each wallet and auth code is asserted by some test."""

from __future__ import annotations

from pathlib import Path

from lf_contracts.errors import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
# Codes no service of this repository can produce yet, with the reason.
NOT_PRODUCED = {
    "auth.profile_not_found": "lenser profiles live in the Community API (Supabase), not in wallet-api",
}


def test_every_wallet_and_auth_code_is_asserted_by_a_test():
    sources = "\n".join(
        path.read_text()
        for path in ROOT.glob("**/tests/**/*.py")
        if ".venv" not in path.parts and path != Path(__file__).resolve()
    )
    required = [
        code for code in CATALOGUE if code.startswith(("wallet.", "auth.")) and code not in NOT_PRODUCED
    ]
    missing = [code for code in required if f'"{code}"' not in sources]
    assert missing == []


def test_codes_are_unique_dot_notation_with_an_error_status():
    for code, entry in CATALOGUE.items():
        assert entry.code == code
        assert 400 <= entry.status <= 599
        assert code.replace(".", "").replace("_", "").isalnum()
