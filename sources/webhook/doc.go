// Package webhook receives changes that vendors push as webhooks.
//
// A delivery is first checked by a Verifier (HubSpot, Shopify, Stripe-style,
// Standard Webhooks, generic HMAC), then turned into Changes by a Parser
// (HubSpot, Shopify, Salesforce Change Data Capture, generic JSON mapping).
// Verifiers and parsers are pure: they hold configuration only, do no I/O
// and are safe for concurrent use.
//
// Deliveries arrive late, twice and out of order. Every Change carries a
// DeliveryID that is stable across the vendor's retries, to deduplicate on,
// and a CommitTime from the vendor, to order by.
package webhook
