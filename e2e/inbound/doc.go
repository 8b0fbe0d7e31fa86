// Package inbound tests the inbound direction end to end: signed vendor
// webhooks received by a cdcd process, applied to local tables and passed
// on to the other systems, never back to where they came from, with both
// buses.
package inbound
