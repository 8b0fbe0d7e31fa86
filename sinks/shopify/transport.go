package shopify

import (
	"errors"
	"fmt"
	"net/url"
)

// transportError wraps a client error with op, without the request URL,
// which may hold a secret.
func transportError(op string, err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	return fmt.Errorf("%s: %w", op, err)
}
