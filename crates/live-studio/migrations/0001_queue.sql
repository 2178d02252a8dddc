-- The broadcaster's upload queue: saved recordings on their way to becoming replays.
create table uploads (
    stream_id text primary key,
    path text not null,
    -- the tus upload once created (resumed from the server's offset)
    upload_url text,
    size integer,
    sent integer not null default 0,
    -- queued, processing, done, failed
    state text not null,
    error text,
    keep_local integer not null default 0,
    created_at integer not null,
    updated_at integer not null
);
