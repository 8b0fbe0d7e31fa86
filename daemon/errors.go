package daemon

// ConfigError is a problem of the config or the command line found while
// building the daemon: fixing the config is what to do, and cdcd exits
// with status 2.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func configError(err error) error { return &ConfigError{err} }
