-- Engagement: one reaction per viewer per show, comments a seller can remove, blocks
-- per seller, and the event log the real-time streams read (its ids order events
-- across server instances, so Last-Event-ID resumes anywhere).

create table reactions (
    stream_id text not null references live_streams (id),
    viewer_id text not null references viewers (id),
    -- like or dislike
    reaction text not null,
    updated_at bigint not null,
    primary key (stream_id, viewer_id)
);

create table comments (
    id text primary key,
    stream_id text not null references live_streams (id),
    viewer_id text not null references viewers (id),
    body text not null,
    created_at bigint not null,
    deleted_at bigint
);

create index comments_stream on comments (stream_id, created_at, id);

create table blocks (
    seller_id text not null references sellers (id),
    viewer_id text not null references viewers (id),
    created_at bigint not null,
    primary key (seller_id, viewer_id)
);

create table events (
    id bigint generated always as identity primary key,
    -- the show an event is about; catalog events carry it too
    stream_id text not null,
    -- stream (its own page) or catalog (/api/events)
    scope text not null,
    kind text not null,
    data text not null,
    created_at bigint not null
);

create index events_stream on events (stream_id, id);
create index events_scope on events (scope, id);
-- live sessions by show, for counting who watches now
create index stream_viewers_live on stream_viewers (stream_id, left_at, last_heartbeat_at);
