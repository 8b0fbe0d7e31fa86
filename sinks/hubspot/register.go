package hubspot

import (
	"fmt"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/delivery"
)

// Register adds the "hubspot" system type to r. Writers share
// env.Limiters, so systems on one account share one budget.
func Register(r *config.Registry) {
	r.Writer("hubspot", config.WriterSpec{
		NewConfig: func() config.Validator { return NewConfig() },
		New: func(name string, cfg config.Validator, env config.Env) (delivery.Writer, error) {
			c, ok := cfg.(*Config)
			if !ok {
				return nil, fmt.Errorf("hubspot writer: config is %T, want *hubspot.Config", cfg)
			}
			return New(name, c, env.Log, env.Limiters)
		},
	})
}
