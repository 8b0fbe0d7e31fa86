// Package store keeps cdcd's own state in schema cdcd of the application's
// Postgres: links to remote records with their base versions, dead letters,
// and the delivery audit trail.
//
// Its migrations (migrations/*.sql) are the one definition of schema
// cdcd: every table of it, those other packages read and write too (the
// intake's inbox and delivery ids, the Postgres writer's apply state), is
// made and changed there. Open applies them before returning, so every
// table exists once a Store does. Every write to cdcd.links goes through
// the link code in links.go. Links, DeadLetters and Audit implement the
// contracts of package syncstate; the remaining Store methods serve operators
// (cdcd dlq) and retention.
package store
