-- A dead letter keeps at most 64 KiB of its error text (syncstate.MaxErrorBytes):
-- a system answering a failure with a body of megabytes weighed on the store,
-- every listing and the dead-letter topic. Letters stored before are cut here
-- as cdcd cuts new ones, to their head and a note saying how long the text
-- was; 16,000 characters are at most 64,000 bytes, leaving room for the note.
UPDATE cdcd.dead_letters
SET error = left(error, 16000) || ' … [cut: ' || octet_length(error) || ' bytes in all]'
WHERE octet_length(error) > 65536;
UPDATE cdcd.dead_letters
SET last_error = left(last_error, 16000) || ' … [cut: ' || octet_length(last_error) || ' bytes in all]'
WHERE octet_length(last_error) > 65536;
