package kafkabus

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cdcd-dev/cdcd/cdc"
)

// Config configures a Producer. Zero values take the defaults below.
type Config struct {
	// Brokers are the bootstrap addresses, "host:port".
	Brokers []string
	// TopicPrefix starts every topic name: <prefix>.<schema>.<table>.
	// Default "cdcd".
	TopicPrefix string
	// ClientID names the client to the brokers. Default "cdcd".
	ClientID string
	// CreateTopics makes the producer create missing topics with
	// Partitions and ReplicationFactor before their first message. Without
	// it, events for a topic that does not exist are nacked, unless the
	// brokers create topics on metadata requests.
	CreateTopics bool
	// Partitions and ReplicationFactor of created topics. Defaults 6 and 1.
	Partitions        int
	ReplicationFactor int
	// BatchSize, BatchBytes and Linger bound one produce batch (per
	// partition): it is sent when it holds BatchSize messages or BatchBytes
	// bytes, or Linger after its first message. Defaults 1000, 1 MiB, 5ms.
	BatchSize  int
	BatchBytes int
	Linger     time.Duration
	// BufferEvents and BufferBytes bound what was handed over and not yet
	// acknowledged by Kafka; Publish blocks while they are reached.
	// Defaults 100000 events and 64 MiB.
	BufferEvents int
	BufferBytes  int
	// Compression is none (default), gzip, snappy, lz4 or zstd.
	Compression string
	// MaxAttempts is how many times a batch is sent before its events are
	// nacked. Retries back off from 100ms to 1s. The default, 300,000, keeps
	// retrying for about 83 hours: giving up on a batch lets the partition's
	// later batches overtake it (see the package documentation).
	MaxAttempts int
	// Format is FormatDebezium (default) or FormatCDCD.
	Format string
	// NoTombstones leaves out the tombstone after each delete in the
	// debezium format.
	NoTombstones bool
	// Schemas wraps each captured change's key and value with its Kafka
	// Connect schema ({"schema":...,"payload":...}), as Debezium's JSON
	// converter does with schemas.enable=true. Inbound events carry no
	// column types and are written without.
	Schemas bool
	// Source fills the envelope's source block.
	Source cdc.SourceInfo
}

const (
	defaultPrefix       = "cdcd"
	defaultClientID     = "cdcd"
	defaultPartitions   = 6
	defaultReplication  = 1
	defaultBatchSize    = 1000
	defaultBatchBytes   = 1 << 20
	defaultLinger       = 5 * time.Millisecond
	defaultBufferEvents = 100_000
	defaultBufferBytes  = 64 << 20
	// defaultMaxAttempts is as many as kafka-go's backoff allows: past about
	// 303,000 attempts its squared delay overflows and retries run hot.
	defaultMaxAttempts = 300_000
)

func orDefault[T int | time.Duration | string](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// withDefaults returns c with zero values replaced by the defaults.
func (c Config) withDefaults() Config {
	c.TopicPrefix = orDefault(c.TopicPrefix, defaultPrefix)
	c.ClientID = orDefault(c.ClientID, defaultClientID)
	c.Partitions = orDefault(c.Partitions, defaultPartitions)
	c.ReplicationFactor = orDefault(c.ReplicationFactor, defaultReplication)
	c.BatchSize = orDefault(c.BatchSize, defaultBatchSize)
	c.BatchBytes = orDefault(c.BatchBytes, defaultBatchBytes)
	c.Linger = orDefault(c.Linger, defaultLinger)
	c.BufferEvents = orDefault(c.BufferEvents, defaultBufferEvents)
	c.BufferBytes = orDefault(c.BufferBytes, defaultBufferBytes)
	c.Compression = orDefault(c.Compression, "none")
	c.MaxAttempts = orDefault(c.MaxAttempts, defaultMaxAttempts)
	c.Format = orDefault(c.Format, FormatDebezium)
	return c
}

var compressions = map[string]kafka.Compression{
	"none":   0,
	"gzip":   kafka.Gzip,
	"snappy": kafka.Snappy,
	"lz4":    kafka.Lz4,
	"zstd":   kafka.Zstd,
}

// Compressions are the codec names Config.Compression takes.
var Compressions = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// Formats are the message formats Config.Format takes.
var Formats = []string{FormatDebezium, FormatCDCD}

// Defaults is the configuration a zero Config stands for: the defaults of
// every field but Brokers.
func Defaults() Config { return Config{}.withDefaults() }

// Validate reports every problem of the configuration with defaults
// applied, each naming its key in the config file's kafka section.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("kafka.%s: "+format, append([]any{key}, args...)...))
	}
	if len(c.Brokers) == 0 {
		bad("brokers", "at least one broker address (host:port) is required")
	}
	for i, b := range c.Brokers {
		if host, port, err := net.SplitHostPort(b); err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("kafka.brokers[%d]: %q is not host:port", i, b))
		}
	}
	if err := CheckPrefix(c.TopicPrefix); err != nil {
		bad("topic_prefix", "%v", err)
	}
	positive := []struct {
		key string
		v   int
	}{
		{"topics.partitions", c.Partitions},
		{"topics.replication_factor", c.ReplicationFactor},
		{"batch.size", c.BatchSize},
		{"batch.bytes", c.BatchBytes},
		{"buffer.events", c.BufferEvents},
		{"buffer.bytes", c.BufferBytes},
	}
	for _, p := range positive {
		if p.v < 0 {
			bad(p.key, "%d is negative", p.v)
		}
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("kafkabus: MaxAttempts %d is negative", c.MaxAttempts))
	}
	if c.Linger < 0 {
		bad("batch.linger", "%v is negative", c.Linger)
	}
	if c.BufferBytes < c.BatchBytes {
		bad("buffer.bytes", "%d is smaller than kafka.batch.bytes (%d), so batches could never fill", c.BufferBytes, c.BatchBytes)
	}
	if !slices.Contains(Formats, c.Format) {
		bad("format", "unknown format %q; use debezium or cdcd", c.Format)
	}
	if _, ok := compressions[c.Compression]; !ok {
		bad("compression", "unknown codec %q; use none, gzip, snappy, lz4 or zstd", c.Compression)
	}
	return errors.Join(errs...)
}

// MaxTopicLen is Kafka's bound on a topic name's length.
const MaxTopicLen = 249

// MaxPrefixLen bounds a topic prefix: it leaves room within MaxTopicLen
// for the ".<schema>.<table>" or ".<system>.<entity>" that follows it.
const MaxPrefixLen = 200

// CheckPrefix says what makes s no topic prefix, or returns nil.
func CheckPrefix(s string) error {
	if len(s) > MaxPrefixLen || !ValidTopic(s) {
		return fmt.Errorf("%q is not a valid topic prefix (at most %d of a-z, A-Z, 0-9, '.', '_' and '-')", s, MaxPrefixLen)
	}
	return nil
}

// ValidTopic reports whether s is a legal Kafka topic name.
func ValidTopic(s string) bool {
	if s == "" || len(s) > MaxTopicLen || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !topicChar(s[i]) {
			return false
		}
	}
	return true
}

func topicChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}
