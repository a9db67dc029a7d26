-- No NOTIFY inside appending transactions (lf_eventstore.wakeup): at COMMIT PostgreSQL serialises
-- every notifying transaction of the cluster on one lock, so this trigger made every append of
-- every service wait for every other's commit. Writers now wake their own process's readers
-- directly and other processes with a throttled NOTIFY sent outside the command's transaction.
--
-- 0004, not the free 0002: deployed databases have applied 0003 already, and migrations run in
-- name order, so a fresh database and an upgraded one apply this last either way.
DROP TRIGGER IF EXISTS events_notify_on_append ON events;
DROP FUNCTION IF EXISTS events_notify();
