package shopify

import (
	"fmt"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/delivery"
)

// Register adds the "shopify" system type to r.
func Register(r *config.Registry) {
	r.Writer("shopify", config.WriterSpec{
		NewConfig: func() config.Validator { return DefaultConfig() },
		New: func(name string, cfg config.Validator, env config.Env) (delivery.Writer, error) {
			c, ok := cfg.(*Config)
			if !ok {
				return nil, fmt.Errorf("shopify writer: config is %T, want *shopify.Config", cfg)
			}
			return New(name, c, env)
		},
	})
}
