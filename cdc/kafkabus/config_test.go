package kafkabus

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // substrings of the error, none for a valid config
	}{
		{"defaults", Config{Brokers: []string{"localhost:9092"}}, nil},
		{"no brokers", Config{}, []string{"kafka.brokers: at least one"}},
		{"bad broker", Config{Brokers: []string{"localhost"}}, []string{`kafka.brokers[0]: "localhost"`}},
		{"everything wrong", Config{
			Brokers: []string{"k:9092"}, TopicPrefix: "cdc d", Partitions: -1, BatchBytes: 2 << 20,
			BufferBytes: 1 << 20, Compression: "brotli", Linger: -time.Second,
		}, []string{"kafka.topic_prefix", "kafka.topics.partitions: -1", "kafka.buffer.bytes", `"brotli"`, "kafka.batch.linger"}},
		// The prefix is followed by ".<schema>.<table>" within Kafka's 249.
		{"prefix too long for its topics", Config{Brokers: []string{"k:9092"}, TopicPrefix: strings.Repeat("p", MaxPrefixLen+1)},
			[]string{"kafka.topic_prefix", "at most 200"}},
		// Regression: the batch bounds were reported as kafka.batch_size,
		// a key the config file does not have (kafka.batch.size).
		{"negative batch", Config{Brokers: []string{"k:9092"}, BatchSize: -1}, []string{"kafka.batch.size: -1 is negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("valid, want errors")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, nerr := New(tc.cfg, zerolog.Nop(), nil); nerr == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

func TestNewDoesNotConnect(t *testing.T) {
	t.Parallel()
	// Port 1 on loopback refuses connections: New must not try.
	reg := prometheus.NewRegistry()
	p, err := New(Config{Brokers: []string{"127.0.0.1:1"}}, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	if p.cfg.Partitions != 6 || p.cfg.BatchSize != defaultBatchSize || p.cfg.BufferEvents != 100_000 || p.cfg.TopicPrefix != "cdcd" {
		t.Errorf("defaults not applied: %+v", p.cfg)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"cdcd_kafka_produce_errors_total", "cdcd_kafka_messages_total", "cdcd_kafka_buffered_events"} {
		if !names[n] {
			t.Errorf("metric %s not registered", n)
		}
	}
	if _, err := New(Config{Brokers: []string{"127.0.0.1:1"}}, zerolog.Nop(), reg); err == nil {
		t.Error("registering the metrics twice on one registry succeeded")
	}
}
