// Package e2e tests cdcd's delivery guarantees end to end: the real cdcd
// binary streaming from a real Postgres into Kafka (kfake over TCP), with
// the daemon killed, Kafka stopped and Postgres restarted mid-stream. It
// holds tests only; assertions are made on the topics' contents and the
// database's rows.
package e2e
