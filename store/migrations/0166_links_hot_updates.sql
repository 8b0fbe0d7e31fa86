-- Every sync of a linked record updates its link (a new base, version,
-- position and updated_at). Such an update wrote a new entry in each index
-- of cdcd.links, because one index (migration 0070, deleted links by
-- updated_at) has a column every update changes, and because the page
-- held no room for the row's new version. Deleted links are now found by
-- deleted_at, which a live link's update leaves as it is, and pages are
-- filled half at insert, so that an update usually changes no indexed
-- column and fits its page: Postgres then adds no index entries (a HOT
-- update). Pages of links made before this migration get the room as
-- they are rewritten.
ALTER TABLE cdcd.links ADD COLUMN deleted_at timestamptz NOT NULL DEFAULT now();
UPDATE cdcd.links SET deleted_at = updated_at WHERE deleted;
COMMENT ON COLUMN cdcd.links.deleted_at IS
    'On a deleted link, when its record''s delete was last delivered (the link is pruned by it); on a live link, when it was made or last deleted: a live link''s updates leave it, so that they change no indexed column.';
CREATE INDEX links_deleted_at ON cdcd.links (deleted_at) WHERE deleted;
DROP INDEX cdcd.links_deleted_updated_at;
ALTER TABLE cdcd.links SET (fillfactor = 50);
