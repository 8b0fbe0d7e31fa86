// Package config loads cdcd's YAML configuration: strict decoding, ${VAR}
// interpolation of values, defaults, and offline validation that reports
// every problem at once with its file, line and key path. It also holds
// the Registry through which main makes plugins known to the loader.
//
// docs/config.md is the reference for the file format.
package config

import (
	"time"

	"github.com/cdcd-dev/cdcd/cdc/kafkabus"
)

// Config is a loaded configuration. After Load, table names are qualified
// ("contacts" becomes "public.contacts") and every value is valid.
type Config struct {
	Postgres Postgres `yaml:"postgres"`
	// Kafka is nil when the file has no kafka section: events then travel
	// on the in-process bus.
	Kafka  *Kafka `yaml:"kafka"`
	HTTP   HTTP   `yaml:"http"`
	Log    Log    `yaml:"log"`
	Audit  Audit  `yaml:"audit"`
	Jobs   Jobs   `yaml:"jobs"`
	Health Health `yaml:"health"`
	// Retention is how long the rows of cdcd's tables are kept.
	Retention Retention          `yaml:"retention"`
	Systems   map[string]*System `yaml:"systems"`
	// Pipelines are in file order.
	Pipelines []*Pipeline `yaml:"pipelines"`
}

// Audit is the delivery audit trail (cdcd.sync_events).
type Audit struct {
	// Retention is how long delivery outcomes are kept; 0 keeps them
	// forever. Load makes it Config.Retention.Audit, its newer name.
	Retention time.Duration `yaml:"retention"`
}

// Jobs tunes how this cdcd runs backfills, exports and imports
// (cdcd.jobs).
type Jobs struct {
	// Concurrency bounds the jobs this process runs at once.
	Concurrency int `yaml:"concurrency"`
	// Lease is how long a job stays with a cdcd that stopped renewing it
	// (one killed) before another takes it from its cursor.
	Lease time.Duration `yaml:"lease"`
	// ChunkSize is the rows a backfill reads per chunk.
	ChunkSize int `yaml:"chunk_size"`
}

// Postgres is the source database and its logical replication setup.
type Postgres struct {
	// URL is a postgres:// URL or a key=value DSN.
	URL         string `yaml:"url"`
	Slot        string `yaml:"slot"`
	Publication string `yaml:"publication"`
	// Tables are "schema.table" names; empty means every table.
	Tables []string `yaml:"tables"`
	// StatusInterval is the standby status update cadence.
	StatusInterval time.Duration `yaml:"status_interval"`
	// Heartbeat is how often cdcd writes to the WAL when idle; 0 disables.
	Heartbeat time.Duration `yaml:"heartbeat"`
}

// Kafka is the Kafka side of the bus.
type Kafka struct {
	Brokers     []string    `yaml:"brokers"`
	TopicPrefix string      `yaml:"topic_prefix"`
	ClientID    string      `yaml:"client_id"`
	Topics      KafkaTopics `yaml:"topics"`
	Batch       KafkaBatch  `yaml:"batch"`
	Buffer      KafkaBuffer `yaml:"buffer"`
	Group       KafkaGroup  `yaml:"group"`
	// Compression is none, gzip, snappy, lz4 or zstd.
	Compression string `yaml:"compression"`
	// Format is debezium (what Debezium's PostgreSQL connector writes) or
	// cdcd (one message per event); see docs/events.md.
	Format string `yaml:"format"`
	// Tombstones follow each delete in the debezium format.
	Tombstones bool `yaml:"tombstones"`
	// Schemas wraps captured changes' keys and values with their Kafka
	// Connect schema blocks, for consumers that need column types.
	Schemas bool `yaml:"schemas"`
}

// KafkaGroup times the sinks workers' consumer groups: how soon a silent
// worker's partitions move to the others, how often members check in, how
// soon added partitions are read, and how long a rebalance and a stop wait
// for the writes in flight.
type KafkaGroup struct {
	SessionTimeout   time.Duration `yaml:"session_timeout"`
	Heartbeat        time.Duration `yaml:"heartbeat"`
	PartitionWatch   time.Duration `yaml:"partition_watch"`
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
	DrainTimeout     time.Duration `yaml:"drain_timeout"`
}

// KafkaTopics says whether and how cdcd creates missing topics.
type KafkaTopics struct {
	Create            bool `yaml:"create"`
	Partitions        int  `yaml:"partitions"`
	ReplicationFactor int  `yaml:"replication_factor"`
}

// KafkaBatch bounds one produce request.
type KafkaBatch struct {
	Size   int           `yaml:"size"`
	Bytes  int           `yaml:"bytes"`
	Linger time.Duration `yaml:"linger"`
}

// KafkaBuffer bounds what is sent but not yet acknowledged; when it is
// full, capture waits (backpressure).
type KafkaBuffer struct {
	Events int `yaml:"events"`
	Bytes  int `yaml:"bytes"`
}

// SetDefaults sets the defaults of a kafka section that is present: the
// bus's own (kafkabus.Defaults).
func (k *Kafka) SetDefaults() {
	d := kafkabus.Defaults()
	*k = Kafka{
		TopicPrefix: d.TopicPrefix,
		ClientID:    d.ClientID,
		Topics:      KafkaTopics{Create: true, Partitions: d.Partitions, ReplicationFactor: d.ReplicationFactor},
		Batch:       KafkaBatch{Size: d.BatchSize, Bytes: d.BatchBytes, Linger: d.Linger},
		Buffer:      KafkaBuffer{Events: d.BufferEvents, Bytes: d.BufferBytes},
		Group: KafkaGroup{SessionTimeout: 6 * time.Second, Heartbeat: time.Second, PartitionWatch: 5 * time.Second,
			RebalanceTimeout: kafkabus.DefaultRebalanceTimeout, DrainTimeout: kafkabus.DefaultDrainTimeout},
		Compression: d.Compression,
		Format:      d.Format,
		Tombstones:  !d.NoTombstones,
	}
}

// HTTP is the admin and webhook listener.
type HTTP struct {
	Listen string `yaml:"listen"`
	// AdminToken, when set, is required as a bearer token by admin
	// endpoints. It is a secret: never log it.
	AdminToken string `yaml:"admin_token"`
	// ReadToken, when set, lets its bearer read the status page and
	// GET /api/status, and nothing else. A secret too.
	ReadToken string `yaml:"read_token"`
	// ReadTimeout bounds reading a whole request, WriteTimeout writing
	// its answer, IdleTimeout how long a kept-alive connection may wait
	// for its next request.
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	IdleTimeout  time.Duration `yaml:"idle_timeout"`
	// MaxConnections caps the open connections; more are closed at once.
	MaxConnections int `yaml:"max_connections"`
}

// Log configures cdcd's own log output.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn or error
	Format string `yaml:"format"` // json or console
}

// System is one external system: its name (the key under systems), its
// type (the plugin) and the plugin's config, as NewConfig returned it,
// filled from the file and validated.
type System struct {
	Name   string
	Type   string
	Config Validator
	// Webhook is the system's webhook section, as its type's Webhook made
	// it; nil when the system sends no webhooks.
	Webhook Validator
	// Line is where the system is defined.
	Line int
}

// Default returns a config holding every default; Load decodes the file
// over it.
func Default() *Config {
	return &Config{
		Postgres: Postgres{
			Slot:           "cdcd",
			Publication:    "cdcd",
			StatusInterval: time.Second,
			Heartbeat:      30 * time.Second,
		},
		HTTP: HTTP{
			Listen:      "127.0.0.1:8080",
			ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 30 * time.Second,
			MaxConnections: 1024,
		},
		Log:       Log{Level: "info", Format: "json"},
		Audit:     Audit{Retention: 30 * 24 * time.Hour},
		Jobs:      Jobs{Concurrency: 2, Lease: 30 * time.Second, ChunkSize: 10000},
		Health:    DefaultHealth(),
		Retention: DefaultRetention(),
	}
}
