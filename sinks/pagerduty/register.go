package pagerduty

import (
	"fmt"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/delivery"
)

// Register adds the "pagerduty" system type to r.
func Register(r *config.Registry) {
	r.Writer("pagerduty", config.WriterSpec{
		NewConfig: func() config.Validator { return DefaultConfig() },
		New: func(name string, cfg config.Validator, env config.Env) (delivery.Writer, error) {
			c, ok := cfg.(*Config)
			if !ok {
				return nil, fmt.Errorf("pagerduty writer: config is %T, want *pagerduty.Config", cfg)
			}
			return New(name, c, env)
		},
	})
}
