-- A change that fails again after it was re-sent (a restart, a Kafka
-- rebalance, a replayed batch) is the same dead letter, not a new one:
-- at most one open letter (dead, replay, replaying) per pipeline, object,
-- record and event. Open duplicates an older cdcd stored are discarded in
-- favour of the first, their attempts added to it.
WITH open AS (
    SELECT id, attempts,
           first_value(id) OVER (PARTITION BY pipeline, object, local_key, event_id ORDER BY id) AS keep
    FROM cdcd.dead_letters
    WHERE status IN ('dead', 'replay', 'replaying')
), extra AS (
    SELECT keep, sum(attempts) AS attempts FROM open WHERE id <> keep GROUP BY keep
), kept AS (
    UPDATE cdcd.dead_letters d SET attempts = d.attempts + e.attempts
    FROM extra e WHERE d.id = e.keep
)
UPDATE cdcd.dead_letters d
SET status = 'discarded', status_at = now(), resolved_at = now(), last_error = 'a re-send of dead letter ' || o.keep
FROM open o
WHERE d.id = o.id AND o.id <> o.keep;

CREATE UNIQUE INDEX dead_letters_open_once_idx ON cdcd.dead_letters (pipeline, object, local_key, event_id)
    WHERE status IN ('dead', 'replay', 'replaying');
