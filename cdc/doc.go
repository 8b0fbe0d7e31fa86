// Package cdc holds what every part of cdcd shares: the Event, its
// position in the WAL, the Debezium JSON envelope, and the contiguous ack
// tracker that decides how far the replication slot may be confirmed.
//
// # Delivery contract
//
// Delivery is at-least-once with per-key order. Each event carries a stable
// ID (the commit LSN of its transaction and its index within it, or a
// vendor's delivery id), so consumers make their writes idempotent.
//
// The replication slot is confirmed only to the end LSN of a transaction
// whose events, and the events of every transaction before it, were all
// acknowledged as durable by the bus: Kafka with acks=all, or every sink of
// the in-process bus. A failed acknowledgement (a nack) stops the reader,
// which restarts from the slot's confirmed LSN and re-sends what was not
// confirmed, with the same event IDs.
//
// cdc imports none of cdcd's other packages; they all import it.
//
// docs/architecture.md is the map of the rest: where an event enters,
// every stage it passes and where its acknowledgement goes, which package
// owns which table, and where a new writer, source, job or health rule
// goes.
package cdc
