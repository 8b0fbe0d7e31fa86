// Package outbound tests cdcd's outbound sync end to end: the real cdcd
// binary streaming a Postgres table to a HubSpot double that fails, stalls
// and rate-limits, over the in-process bus and over Kafka (kfake), with
// sink processes killed mid-batch and dead letters replayed through the
// CLI. It holds tests only; assertions are made on the double's records
// and write history, the table's rows and cdcd's own schema.
package outbound
