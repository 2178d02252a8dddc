-- A row written by the marketplace's own tools, with its columns only (no creation or
-- change time), is taken in: both times default to the moment it is written. SQLite
-- changes a column's default only by making the table again: its rows are set aside,
-- the table dropped and made anew, and its rows put back. The tables that refer to a
-- show are checked at the end of the migration, when every show is back (a drop
-- alone would leave them pointing at nothing).
pragma defer_foreign_keys = on;
create temp table live_streams_kept as select * from live_streams;
drop table live_streams;
create table live_streams (
    id text primary key,
    vendor_id text not null references sellers (id),
    title text not null,
    description text not null default '',
    thumbnail_url text,
    status text not null,
    viewer_count integer not null default 0,
    like_count integer not null default 0,
    dislike_count integer not null default 0,
    comment_count integer not null default 0,
    share_count integer not null default 0,
    peak_viewers integer not null default 0,
    unique_viewers integer not null default 0,
    reminder_count integer not null default 0,
    video_path text,
    stream_url text,
    scheduled_at integer,
    started_at integer,
    ended_at integer,
    end_reason text,
    -- milliseconds since the Unix epoch, now
    created_at integer not null
        default (cast(round((julianday('now') - 2440587.5) * 86400000) as integer)),
    updated_at integer not null
        default (cast(round((julianday('now') - 2440587.5) * 86400000) as integer)),
    -- optimistic concurrency: every lifecycle write checks and bumps it
    version integer not null default 0,
    ingest_state text,
    ingest_since integer,
    ingest_last_update integer,
    ingest_key_hash text,
    ingest_client text,
    replay_state text,
    replay_reason text
);
insert into live_streams select * from temp.live_streams_kept;
drop table temp.live_streams_kept;
create index live_streams_live on live_streams (status, started_at, id);
create index live_streams_upcoming on live_streams (status, scheduled_at, id);
create index live_streams_recent on live_streams (status, ended_at, id);
create index live_streams_vendor on live_streams (vendor_id, created_at, id);
create index live_streams_ingest_since on live_streams (ingest_state, ingest_since);
create index live_streams_ingest_update on live_streams (ingest_state, ingest_last_update);
create unique index live_streams_key on live_streams (ingest_key_hash);
