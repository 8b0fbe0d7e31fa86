// Package kafkabus is the Kafka side of cdcd's bus: Producer publishes
// captured events to Kafka with kafka-go.
//
// # Messages
//
// Each event becomes one message on the topic <prefix>.<schema>.<table>
// (see TopicName). The key is the JSON object of the key columns
// (cdc.AppendKey), or a null key for tables without one; the value is the
// Debezium JSON envelope (cdc.AppendEnvelope). Header cdcd-event-id carries
// Event.ID and cdcd-origin carries Event.Origin when set. The partition is
// the Java client's murmur2 hash of the key modulo the partition count, so
// Java and librdkafka producers place a key on the same partition; every
// keyless message of a table lands on one partition. Adding partitions to a
// topic moves keys, which breaks per-key order across the change.
//
// # Ordering and acknowledgements
//
// Kafka acknowledges every batch with acks=all. The writer keeps one
// goroutine per topic partition that sends that partition's batches one at
// a time, in the order their messages were handed over, and retries a batch
// (MaxAttempts times, backing off up to 1s) before it sends the next. By
// default it retries for days, so a Kafka outage stalls the partition, and
// through the buffer the capture, rather than letting a later batch of the
// partition overtake one that was given up on. So:
//
//   - Messages handed over one Publish after another reach each partition
//     in that order, and so do the events of one key.
//   - A retried batch may be written twice (the broker applied an attempt
//     whose answer was lost). In principle an attempt that timed out
//     client-side and that the broker applies late can also land after a
//     later batch. Consumers dedupe by cdcd-event-id.
//   - Each event's Ack is settled exactly once, from the writer's completion
//     of its batch: nil when Kafka acknowledged the batch, the error when
//     the batch failed after its last attempt. Consecutive events of a batch
//     sharing an acker with AckN (a *cdc.Txn) are settled with one call;
//     such ackers must be comparable with ==.
//
// A failed batch (an error kafka-go does not retry, or MaxAttempts set low)
// does not stop its partition: later batches of the same
// partition are still sent and, if Kafka takes them, acknowledged with nil,
// so Kafka can hold a key's newer change without the failed older one. The
// checkpoint never passes the failed event because the cdc.Tracker fails
// permanently on the first nack: Confirmed stops below the failed event's
// transaction, whatever is acknowledged after it, and the reader restarts
// from the slot's confirmed LSN and publishes the failed events and all that
// followed them again, with the same ids. Consumers therefore see every
// change at least once, and the last copy of each change in order. Ackers
// other than the Tracker must treat a nack as sticky in the same way.
//
// # Backpressure
//
// Events count against BufferEvents and their encoded bytes against
// BufferBytes from Publish until their acks are settled. Publish waits for
// room for all its events; a single Publish larger than the whole buffer
// waits until nothing else is in flight.
//
// # Consumer groups and rebalances
//
// A Consumer reads a pipeline's topics in the consumer group
// <prefix>.<pipeline> and commits a partition's offsets only after its
// sink returned nil for the messages before them. When the partitions
// move between the members (a sinks worker joins or stops, partitions are
// added), each member, before it rejoins the group:
//
//   - stops fetching and drops what it fetched and did not hand over;
//   - abandons the batches after the last one whose Write began (an
//     earlier one not begun yet is still written, or the later one could
//     not be committed), and stops retrying failed ones, without calling
//     the sink again;
//   - waits for the Writes in flight, heartbeating meanwhile so that the
//     coordinator keeps it in the group;
//   - commits what was delivered, in each partition up to its first
//     message that was not (an abandoned or cancelled batch holds back
//     only its own partitions).
//
// The coordinator holds the rebalance until every member rejoined, so the
// next owner of a partition starts after the last message its previous
// owner delivered: a clean join or stop delivers no message twice. The
// wait is bounded: at a stop, ConsumerConfig.DrainTimeout (3s), after
// which the Writes are cancelled and the member leaves; at a rebalance,
// the rebalance timeout (30s) less 5s to commit and rejoin. A Write still
// running then, or a member killed (SIGKILL) or cut off, leaves its
// uncommitted messages to be delivered again by the next owner: that is
// the at-least-once contract, and why sinks dedupe by event id where the
// target allows it.
//
// # Topics
//
// A consumer group reads those of its topics that exist; a topic created or
// deleted while it runs makes each member join again with the topics that
// exist then (kafka-go assigns no partition of any topic while one of the
// topics it was given is missing).
//
// With CreateTopics, topics are created (Partitions, ReplicationFactor)
// before their first message, whether listed up front with EnsureTopics or
// met while streaming; a topic that already exists is used as it is.
package kafkabus
