-- A deleted link is kept for retention.deleted_links, then pruned by its
-- updated_at (when its record's delete was delivered): this index finds
-- them without reading the live links.
CREATE INDEX links_deleted_updated_at ON cdcd.links (updated_at) WHERE deleted;
