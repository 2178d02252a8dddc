-- Resumable replay uploads (tus). The bytes live in storage; this is their state.

create table uploads (
    id text primary key,
    stream_id text not null references live_streams (id),
    vendor_id text not null references sellers (id),
    -- null while the length is deferred (progressive upload during the show)
    upload_length integer,
    upload_offset integer not null default 0,
    metadata text not null default '',
    -- receiving, complete, processing, done, failed, terminated
    state text not null,
    created_at integer not null,
    updated_at integer not null,
    expires_at integer not null
);

create index uploads_stream on uploads (stream_id, state);
create index uploads_state on uploads (state, expires_at);
