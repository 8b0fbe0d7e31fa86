package vendorhttp

import (
	"errors"
	"fmt"
	"net/url"
)

// TransportError is a client error of the call op (no answer, or no
// request made) without the request's URL, which may hold a secret.
func TransportError(op string, err error) error {
	return fmt.Errorf("%s: %w", op, WithoutURL(err))
}

// WithoutURL is err without the *url.Error that names the request's URL.
func WithoutURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}
