package kafka

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/kafkabus"
	"github.com/cdcd-dev/cdcd/config"
)

// Values a record can be sent as.
const (
	ValueEnvelope = "envelope" // the event's Debezium JSON envelope
	ValueFields   = "fields"   // the mapped fields as a JSON object
)

// Config is the config of the "kafka" system type: one topic of an
// external cluster.
type Config struct {
	// Brokers are the bootstrap addresses, host:port.
	Brokers []string `yaml:"brokers"`
	// Topic receives every record. It must exist.
	Topic string `yaml:"topic"`
	// Value is envelope (default) or fields. With fields, a delete is a
	// tombstone (null value), so a compacted topic drops the key.
	Value string `yaml:"value"`
	// ClientID names the client to the brokers. Default cdcd.
	ClientID string `yaml:"client_id"`
	// Timeout bounds one Write. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig returns a config with its defaults set.
func DefaultConfig() *Config {
	return &Config{Value: ValueEnvelope, ClientID: "cdcd", Timeout: 30 * time.Second}
}

// Validate checks the config offline.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if len(c.Brokers) == 0 {
		bad("brokers", "required: at least one host:port")
	}
	for i, b := range c.Brokers {
		if h, p, err := net.SplitHostPort(b); err != nil || h == "" || p == "" {
			bad(fmt.Sprintf("brokers[%d]", i), "%q is not host:port", b)
		}
	}
	if !kafkabus.ValidTopic(c.Topic) {
		bad("topic", "%q is not a topic name (1-%d letters, digits, '.', '_', '-')", c.Topic, kafkabus.MaxTopicLen)
	}
	if c.Value != ValueEnvelope && c.Value != ValueFields {
		bad("value", "%q is not envelope or fields", c.Value)
	}
	if c.ClientID == "" {
		bad("client_id", "required")
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be positive")
	}
	return errors.Join(errs...)
}
