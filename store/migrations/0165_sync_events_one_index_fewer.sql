-- Every delivery attempt writes a row of cdcd.sync_events, and each index
-- of it an entry more: the (pipeline, local_key, at) index was the widest
-- and the one written at random places (keys are in no order), for a
-- record's history that nothing of cdcd reads (retention reads by at, the
-- operators' views by time). Without it a COPY of the trail writes two
-- index entries a row instead of three. An operator who looks records'
-- histories up often can create it again; cdcd does not mind.
DROP INDEX IF EXISTS cdcd.sync_events_pipeline_key_idx;
