-- The event log stays bounded and keeps nothing removed: events older than the
-- retention are pruned (by their time), and an event about one thing of a show (a
-- comment) names it, so removing that thing removes the event too. A show's events are
-- read by show and scope together, on one index (never by scanning every show's).
alter table events add column subject_id text;
drop index events_stream;
create index events_show on events (stream_id, scope, id);
create index events_subject on events (stream_id, subject_id);
create index events_created on events (created_at);
