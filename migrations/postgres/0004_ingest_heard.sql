-- A connected publisher's silence counts from its publish when no heartbeat followed it
-- (before, such a publisher was never taken as gone): its publish was the row's last
-- lifecycle write.
update live_streams set ingest_last_update = updated_at
where ingest_state = 'connected' and ingest_last_update is null;
