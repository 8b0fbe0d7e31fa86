package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/syncstate"
)

// DeadLettersToTopic returns the dead-letter store of pipelines on Kafka:
// DeadLetters whose Put also marks each new letter to be published to the
// pipeline's dead-letter topic (PublishDeadLetters). A letter merged into
// one already open (the same change failing again) is not published again.
func (s *Store) DeadLettersToTopic() *DeadLetters { return &DeadLetters{pool: s.pool, topic: true} }

// PublishDeadLetters calls publish with up to limit of pipeline's letters
// waiting for the topic, oldest first, and marks them published once it
// returns nil, in one transaction: only committed letters are published,
// and a letter is offered to one caller at a time, however many call at
// once (letters another caller holds are skipped). A letter whose publish
// succeeded but whose mark failed to commit is offered again: the topic
// holds it at least once, each copy with the same ID. It returns how many
// letters were published.
func (d *DeadLetters) PublishDeadLetters(ctx context.Context, pipeline string, limit int, publish func([]syncstate.DeadLetter) error) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			SELECT `+qualified("d", letterColumns)+` FROM cdcd.dead_letters d
			WHERE pipeline = $1 AND topic_pending
			ORDER BY id
			LIMIT $2
			FOR UPDATE SKIP LOCKED`, pipeline, limit)
		stored, err := pgx.CollectRows(rows, scanLetter)
		if err != nil || len(stored) == 0 {
			return err
		}
		letters := make([]syncstate.DeadLetter, len(stored))
		ids := make([]int64, len(stored))
		for i := range stored {
			letters[i], ids[i] = stored[i].DeadLetter, stored[i].ID
		}
		if err := publish(letters); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE cdcd.dead_letters SET topic_pending = false WHERE id = ANY($1)`, ids); err != nil {
			return err
		}
		n = len(letters)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("publish dead letters of %s: %w", pipeline, err)
	}
	return n, nil
}
