package slack

import (
	"fmt"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/delivery"
)

// Register adds the "slack" system type to r.
func Register(r *config.Registry) {
	r.Writer("slack", config.WriterSpec{
		NewConfig: func() config.Validator { return DefaultConfig() },
		New: func(name string, cfg config.Validator, env config.Env) (delivery.Writer, error) {
			c, ok := cfg.(*Config)
			if !ok {
				return nil, fmt.Errorf("slack writer: config is %T, want *slack.Config", cfg)
			}
			return New(name, c, env)
		},
	})
}
