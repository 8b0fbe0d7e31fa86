// Package cdctest starts the real components cdcd's tests run against: a
// Postgres from the machine's packages (initdb and pg_ctl in a temporary
// directory, on a free loopback port, wal_level=logical) and an in-process
// Kafka-protocol broker (kfake) reached over TCP.
package cdctest
