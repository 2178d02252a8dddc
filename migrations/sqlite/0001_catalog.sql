-- Feza Live catalog and lifecycle. Times are milliseconds since the Unix epoch (UTC).

create table sellers (
    id text primary key,
    name text not null,
    token_hash text not null unique,
    created_at integer not null
);

create table viewers (
    id text primary key,
    display_name text not null,
    token_hash text not null unique,
    created_at integer not null
);

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
    created_at integer not null,
    updated_at integer not null,
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

create index live_streams_live on live_streams (status, started_at, id);
create index live_streams_upcoming on live_streams (status, scheduled_at, id);
create index live_streams_recent on live_streams (status, ended_at, id);
create index live_streams_vendor on live_streams (vendor_id, created_at, id);
-- the sweeper's look-ups of shows whose ingest state is due to change with time
create index live_streams_ingest_since on live_streams (ingest_state, ingest_since);
create index live_streams_ingest_update on live_streams (ingest_state, ingest_last_update);
create unique index live_streams_key on live_streams (ingest_key_hash);

create table stream_viewers (
    id text primary key,
    stream_id text not null references live_streams (id),
    user_id text not null references viewers (id),
    session_id text not null unique,
    joined_at integer not null,
    left_at integer,
    last_heartbeat_at integer not null,
    watch_duration integer not null default 0
);

create index stream_viewers_stream on stream_viewers (stream_id, last_heartbeat_at);
create index stream_viewers_user on stream_viewers (stream_id, user_id);

create table stream_interactions (
    id text primary key,
    stream_id text not null references live_streams (id),
    user_id text not null references viewers (id),
    interaction_type text not null,
    comment_text text,
    created_at integer not null
);

create index stream_interactions_stream on stream_interactions (stream_id, interaction_type, created_at);

create table saved_streams (
    id text primary key,
    stream_id text not null unique references live_streams (id),
    vendor_id text not null references sellers (id),
    title text not null,
    description text not null default '',
    video_url text,
    thumbnail_url text,
    duration real,
    viewer_count integer not null default 0,
    peak_viewers integer not null default 0,
    like_count integer not null default 0,
    dislike_count integer not null default 0,
    comment_count integer not null default 0,
    share_count integer not null default 0,
    -- minor currency units; 0 until orders are linked to shows
    total_revenue integer not null default 0,
    streamed_at integer,
    saved_at integer not null,
    views_count integer not null default 0
);

create table reminders (
    stream_id text not null references live_streams (id),
    viewer_id text not null references viewers (id),
    created_at integer not null,
    primary key (stream_id, viewer_id)
);

create index reminders_viewer on reminders (viewer_id);
