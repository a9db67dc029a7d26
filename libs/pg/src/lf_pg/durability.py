"""Commits that need not wait for the WAL flush.

A commit normally returns only once its WAL record is on disk (``synchronous_commit = on``): an
fsync per commit, shared by the commits that happen to flush together. For a few writes losing the
last fraction of a second of them in a crash of the *server* (not of a service) is harmless:
bookkeeping that is redone or rebuilt anyway. Those transactions commit with
``synchronous_commit = off``: the commit returns at once and the WAL writer flushes within
``3 x wal_writer_delay`` (600 ms by default).

Why that is safe where it is used:

* A crash can only lose a *suffix* of such commits. Every later commit that waits for the flush
  (a command, an event) flushes the WAL up to its own record, and with it every earlier commit, so no
  durable transaction can depend on a lost one. Nothing is ever corrupted or half applied.
* Other sessions see the commit at once; only its survival of a server crash is deferred.

Use it ONLY for writes whose loss changes no money, no event and no answer already given for good:
rate-limit admissions (a few forgotten admissions), pruning (the rows come back and are pruned next
time), the relay's checkpoint (the batch is published again and consumers dedupe on the event id).
Never in a transaction that appends an event or records money: the setting covers the whole
transaction, whatever else it wrote.
"""

from __future__ import annotations

WITHOUT_FLUSH = "set_config('synchronous_commit', 'off', true)"
"""An SQL expression that makes the transaction it runs in commit without waiting for the WAL flush.

Put it in the statement the transaction already sends, where it is evaluated once (a select list
over one row, or ``FROM ..., <it>``), so it costs no round trip; in an explicit transaction
``SET LOCAL synchronous_commit = off`` does the same. It is transaction-local (``true``): it never
outlives the transaction, so a pooled connection goes back unchanged.

It must be set by the statement's caller, not inside a function it calls: a function's own ``SET``
clause is undone when the function returns, before the commit reads the setting, and a
``set_config`` hidden in a function would silently cover a caller's transaction that records money.
"""
