package cdc

import (
	"errors"
	"time"
)

// permanentError marks a failure that retrying cannot fix (a 4xx other than
// 408, 409 and 429, a validation error): the change goes to the dead-letter
// store with the error's text.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked
// Permanent.
func IsPermanent(err error) bool {
	if err == nil {
		return false // no errors.As: its target escapes, an allocation a call
	}
	var p *permanentError
	return errors.As(err, &p)
}

// retryAfterError carries the delay a system asked for (Retry-After, a
// rate-limit window) before the next attempt.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks err as transient, to be retried no sooner than after.
func RetryAfter(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err, after}
}

// RetryAfterOf returns the delay requested by err, if any.
func RetryAfterOf(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

// transientError marks a failure of the target itself, not of the records
// written (a deadlock, a lock or statement timeout, a lost connection, a
// server shutting down).
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// Transient marks err as the target's failure, not the records': the write
// is retried with backoff for as long as it lasts, and the attempt is not
// counted toward a record's tries, so it never dead-letters a record (a
// pipeline's max_age still does). A Writer returns it for the whole call,
// or as the Err of each record it concerns.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &transientError{err}
}

// IsTransient reports whether err, or an error it wraps, was marked
// Transient.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var t *transientError
	return errors.As(err, &t)
}
