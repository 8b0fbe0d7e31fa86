-- On Kafka, dead letters also go to the topic <prefix>.dlq.<pipeline>.
-- They are published once the transaction that stored them committed, so
-- a group of writes rolled back and stored again, or a change failing
-- again after a re-send, does not publish its letter twice: a letter
-- waits here, topic_pending, until it is on the topic.
ALTER TABLE cdcd.dead_letters ADD COLUMN topic_pending boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN cdcd.dead_letters.topic_pending IS
    'Stored by a pipeline on Kafka and not yet published to its dead-letter topic.';
CREATE INDEX dead_letters_topic_pending_idx ON cdcd.dead_letters (pipeline, id) WHERE topic_pending;
