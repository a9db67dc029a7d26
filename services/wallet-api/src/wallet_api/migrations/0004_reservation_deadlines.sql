-- A reservation can be kept alive (ReservationExtended moves expires_at) up to its hard deadline,
-- max_expires_at: created at + RESERVATION_MAX_LIFETIME_SECONDS. A reservation recorded before
-- deadlines existed has its expiry as its deadline (it cannot be extended), as its event replays.
ALTER TABLE reservations ADD COLUMN max_expires_at timestamptz;
UPDATE reservations SET max_expires_at = expires_at;
ALTER TABLE reservations ALTER COLUMN max_expires_at SET NOT NULL;
ALTER TABLE reservations ADD CONSTRAINT reservations_expiry_within_deadline
    CHECK (expires_at <= max_expires_at);
