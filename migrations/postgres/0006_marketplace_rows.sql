-- A row written by the marketplace's own tools, with its columns only (no creation or
-- change time), is taken in: both times default to the moment it is written
-- (milliseconds since the Unix epoch).
alter table live_streams
    alter column created_at set default (extract(epoch from clock_timestamp()) * 1000)::bigint,
    alter column updated_at set default (extract(epoch from clock_timestamp()) * 1000)::bigint;
