-- The event log stays bounded and keeps nothing removed: events older than the
-- retention are pruned (by their time), and an event about one thing of a show (a
-- comment) names it, so removing that thing removes the event too. A show's events are
-- read by show and scope together, on one index (never by scanning every show's).
alter table events add column subject_id text;
drop index events_stream;
create index events_show on events (stream_id, scope, id);
create index events_subject on events (stream_id, subject_id);
create index events_created on events (created_at);

-- How far the log was pruned: a client resuming from before this id missed events
-- that are gone (and is told to reload); one resuming after it missed nothing kept.
create table event_log (
    id integer primary key,
    pruned_through bigint not null
);
insert into event_log (id, pruned_through) values (1, 0);
