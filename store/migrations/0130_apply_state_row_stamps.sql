-- An apply state's per-column stamps keep, from now on, the columns
-- stamped with the record's own stamp (its version and event id) as a
-- list of names under the key "" (no column is named so), and a stamp
-- only for a column set by another change: the row of a change that set
-- every column it carried is a third of its size. This rewrites the
-- states kept before in that form. A column's stamp is folded only when
-- it equals the record's exactly: the same event id, and a version that
-- the record's timestamptz holds (at most microseconds). A state without
-- stamps (NULL, kept before there were per-column stamps) stays as it is.
WITH folded AS (
    SELECT s.system, s.table_name, s.key,
        COALESCE(jsonb_object_agg(f.col, f.stamp) FILTER (WHERE NOT f.same), '{}'::jsonb)
            || CASE WHEN bool_or(f.same) THEN jsonb_build_object('', jsonb_agg(f.col ORDER BY f.col) FILTER (WHERE f.same))
                    ELSE '{}'::jsonb END AS fields
    FROM cdcd.apply_state s
    CROSS JOIN LATERAL (
        SELECT e.key AS col, e.value AS stamp,
            COALESCE(jsonb_typeof(e.value) = 'array' AND jsonb_array_length(e.value) = 2
                AND jsonb_typeof(e.value -> 0) = 'string' AND e.value ->> 1 = s.event_id
                AND s.version IS NOT NULL AND e.value ->> 0 ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$'
                AND CASE WHEN e.value ->> 0 ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$'
                         THEN (e.value ->> 0)::timestamptz = s.version END, false) AS same
        FROM jsonb_each(s.fields) e
    ) f
    WHERE jsonb_typeof(s.fields) = 'object' AND NOT s.fields ? ''
    GROUP BY s.system, s.table_name, s.key
    HAVING bool_or(f.same)
)
UPDATE cdcd.apply_state s SET fields = folded.fields
FROM folded
WHERE s.system = folded.system AND s.table_name = folded.table_name AND s.key = folded.key;

COMMENT ON COLUMN cdcd.apply_state.fields IS
    'Per local column, [version, event id] of the change that last set it; under the key "", the columns set by the change whose version and event id the row holds. NULL in a state kept before there were per-column stamps.';
