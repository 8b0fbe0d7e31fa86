// Package delivery is the machinery every outbound sink shares: it takes a
// pipeline's events, maps them into Records, and writes them through the
// system's Writer with per-record order, coalescing, retries with backoff,
// links to the remote records, the audit trail and the dead-letter store
// (their records and store contracts are package syncstate's).
//
// A Writer only speaks its vendor's API; it never retries or sleeps on its
// own. It classifies each failure: cdc.Permanent for what retrying cannot
// fix, cdc.RetryAfter for a delay the vendor asked for, cdc.Transient for
// the target's trouble rather than the record's (retried without counting
// toward MaxAttempts), anything else is retried and counted
// (sinks/vendorhttp classifies HTTP answers so). Rate limits
// are the Writer's: package ratelimit keeps one budget per vendor account.
package delivery
