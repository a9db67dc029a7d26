"""Fake outside systems: HTTP servers on 127.0.0.1 that speak the real wire format (DESIGN §8).

- ``lemonsqueezy``: the checkout API, and signed webhook deliveries.
- ``anthropic``, ``openai``, ``gemini``, ``ollama``, ``fal``: AI providers, each a ``FakeProvider``
  (``provider``) with the same knobs: reply and usage, ``fail_with``, ``hang``,
  ``break_stream_after``, pacing, and ``disconnects`` when a client leaves mid-answer.
- ``chainabit``: the partner API platform-api provisions lensers' accounts through (``ApiKey``
  header, idempotent on ``source_user_id``; ``fail_with``, ``hang``, ``lose_next_answers``).
- ``lnbits``: one LNbits wallet's ``/api/v1/payments`` (invoice key creates and checks, admin key pays;
  real BOLT11 strings; ``settle``, ``make_invoice``, ``fail_payments``, ``leave_payments_pending``,
  ``lose_next_payment_answers``, ``hang_after_next_payment``: a payment whose outcome is unknown).
- ``price_oracle``: CoinGecko's ``simple/price`` for BTC/USD (``set_price``, ``fail_with``,
  ``answer_garbage``, ``hang``).
"""
