-- Every change the Postgres writer applies updates its record's state (a
-- new version, event id and stamps). The update changes no indexed column,
-- but a page filled whole at insert has no room for the row's new version,
-- so it went to another page and added an entry to the primary key. Pages
-- are now filled half at insert, so that the update fits its page and
-- Postgres adds no index entries (a HOT update). Pages of states made
-- before this migration get the room as they are rewritten.
ALTER TABLE cdcd.apply_state SET (fillfactor = 50);
