// Package store keeps cdcd's own state in schema cdcd of the application's
// Postgres: links to remote records with their base versions, dead letters,
// and the delivery audit trail.
//
// Open applies the embedded migrations before returning, so every table
// exists once a Store does. Links, DeadLetters and Audit implement the
// contracts of package syncstate; the remaining Store methods serve operators
// (cdcd dlq) and retention.
package store
