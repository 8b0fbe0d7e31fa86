-- A pipeline's links nearly all share (system, object). Both indexes of
-- cdcd.links began with those two columns, so while the table's statistics
-- lagged behind its growth (the first sync of many records), the planner
-- could look a batch's links up through the external-id index, reading
-- every link of the object for each record: a Write of 512 records took
-- seconds once 5,000 were linked. Leading with the external id leaves the
-- primary key the only index for lookups by local record; lookups by
-- external id name all three columns and use this one whole.
ALTER TABLE cdcd.links DROP CONSTRAINT links_external_id_key;
ALTER TABLE cdcd.links ADD CONSTRAINT links_external_id_key UNIQUE (external_id, system, object)
    DEFERRABLE INITIALLY IMMEDIATE;
