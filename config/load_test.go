package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/conflict"
)

const fullExample = `
postgres:
  url: ${DATABASE_URL}
  slot: cdcd_main
  publication: cdcd_pub
  tables: [public.contacts, orders]
  status_interval: 500ms
  heartbeat: 0
kafka:
  brokers: [localhost:9092, "kafka-2.internal:9093"]
  topic_prefix: app.cdc
  client_id: cdcd-1
  topics: {create: false, partitions: 12, replication_factor: 3}
  batch: {size: 500, bytes: 524288, linger: 10ms}
  buffer: {events: 5000, bytes: 33554432}
  group: {rebalance_timeout: 45s, drain_timeout: 10s}
  compression: zstd
  format: cdcd
  tombstones: false
http:
  listen: 0.0.0.0:9000
  admin_token: ${CDCD_ADMIN_TOKEN}
  idle_timeout: 5s
  max_connections: 50
log:
  level: debug
  format: console
systems:
  crm:
    type: fake
    url: https://crm.example.com
    token: ${CRM_TOKEN:-dev-token}
    rate: {requests: 50, per: 1s}
    tags: [a, b]
    enabled: true
    ratio: 0.5
    retries: 3
    webhook: {secrets: ["${CRM_SECRET:-whsec}"]}
  out:
    type: nokeys
pipelines:
  - name: contacts-to-crm
    from: public.contacts
    to: crm
  - name: orders-out
    from: orders
    to: out
  - name: crm-inbound
    from: crm
    object: contacts
    to: crm_contacts
    match: [email]
`

func TestLoadFullExample(t *testing.T) {
	t.Parallel()
	cfg, err := loadString(t, fullExample, map[string]string{
		"DATABASE_URL":     "postgres://cdcd:s3cret@db:5432/app?sslmode=disable",
		"CDCD_ADMIN_TOKEN": "tok",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Postgres: Postgres{
			URL:            "postgres://cdcd:s3cret@db:5432/app?sslmode=disable",
			Slot:           "cdcd_main",
			Publication:    "cdcd_pub",
			Tables:         []string{"public.contacts", "public.orders"},
			StatusInterval: 500 * time.Millisecond,
			Heartbeat:      0,
		},
		Kafka: &Kafka{
			Brokers:     []string{"localhost:9092", "kafka-2.internal:9093"},
			TopicPrefix: "app.cdc",
			ClientID:    "cdcd-1",
			Topics:      KafkaTopics{Create: false, Partitions: 12, ReplicationFactor: 3},
			Batch:       KafkaBatch{Size: 500, Bytes: 524288, Linger: 10 * time.Millisecond},
			Buffer:      KafkaBuffer{Events: 5000, Bytes: 32 << 20},
			Group:       KafkaGroup{SessionTimeout: 6 * time.Second, Heartbeat: time.Second, PartitionWatch: 5 * time.Second, RebalanceTimeout: 45 * time.Second, DrainTimeout: 10 * time.Second},
			Compression: "zstd",
			Format:      "cdcd",
		},
		HTTP: HTTP{Listen: "0.0.0.0:9000", AdminToken: "tok",
			ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 5 * time.Second, MaxConnections: 50},
		Log:       Log{Level: "debug", Format: "console"},
		Audit:     Audit{Retention: 30 * 24 * time.Hour},
		Jobs:      Jobs{Concurrency: 2, Lease: 30 * time.Second, ChunkSize: 10000},
		Health:    DefaultHealth(),
		Retention: DefaultRetention(),
		Systems: map[string]*System{
			"crm": {Name: "crm", Type: "fake", Line: 28, Config: &fakeConfig{
				URL: "https://crm.example.com", Token: "dev-token",
				Rate: fakeRate{Requests: 50, Per: time.Second},
				Tags: []string{"a", "b"}, Enabled: true, Ratio: 0.5, Retries: 3,
			}, Webhook: &fakeWebhook{Secrets: []string{"whsec"}}},
			"out": {Name: "out", Type: "nokeys", Line: 38, Config: &noKeys{}},
		},
		Pipelines: []*Pipeline{
			defaultPipeline("contacts-to-crm", "public.contacts", "crm", 41),
			defaultPipeline("orders-out", "public.orders", "out", 44),
			func() *Pipeline {
				p := defaultPipeline("crm-inbound", "crm", "public.crm_contacts", 47)
				p.Object, p.Match = "contacts", []string{"email"}
				return p
			}(),
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got\n%#v\nwant\n%#v", cfg, want)
		for name, s := range cfg.Systems {
			t.Logf("system %s: %#v %#v", name, s, s.Config)
		}
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadString(t, minimal, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Postgres.URL = "postgres://localhost/app"
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got %#v, want %#v", cfg, want)
	}
	if cfg.Kafka != nil {
		t.Error("kafka is set without a kafka section")
	}
	if cfg.Postgres.Slot != "cdcd" || cfg.Postgres.Publication != "cdcd" ||
		cfg.Postgres.StatusInterval != time.Second || cfg.Postgres.Heartbeat != 30*time.Second ||
		cfg.HTTP.Listen != "127.0.0.1:8080" || cfg.Log != (Log{"info", "json"}) {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestKafkaDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadString(t, minimal+"kafka:\n  brokers: [localhost:9092]\n  batch: {size: 10}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Kafka{
		Brokers:     []string{"localhost:9092"},
		TopicPrefix: "cdcd",
		ClientID:    "cdcd",
		Topics:      KafkaTopics{Create: true, Partitions: 6, ReplicationFactor: 1},
		Batch:       KafkaBatch{Size: 10, Bytes: 1048576, Linger: 5 * time.Millisecond},
		Buffer:      KafkaBuffer{Events: 100000, Bytes: 67108864},
		Group:       KafkaGroup{SessionTimeout: 6 * time.Second, Heartbeat: time.Second, PartitionWatch: 5 * time.Second, RebalanceTimeout: 30 * time.Second, DrainTimeout: 3 * time.Second},
		Compression: "none",
		Format:      "debezium",
		Tombstones:  true,
	}
	if !reflect.DeepEqual(cfg.Kafka, want) {
		t.Errorf("got %+v, want %+v", cfg.Kafka, want)
	}
}

func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cdcd.yaml")
	if err := os.WriteFile(path, []byte("postgres:\n  url: ${CDCD_TEST_URL}\nlog: {level: loud}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CDCD_TEST_URL", "host=localhost dbname=app")
	_, err := Load(path, testRegistry())
	want := path + `:3:7: log.level: "loud" is not one of debug, info, warn, error`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if _, ok := err.(*Errors); !ok {
		t.Errorf("error is %T, want *Errors", err)
	}

	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"), testRegistry())
	if err == nil || !strings.HasPrefix(err.Error(), "read config: open ") {
		t.Errorf("missing file: %v", err)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	t.Parallel()
	cfg, err := loadString(t, `
postgres: {url: 'postgres://localhost/app'}
systems:
  a: &base
    type: fake
    url: https://a.example.com
    rate: {requests: 1, per: 1s}
  b:
    <<: *base
    url: https://b.example.com
pipelines:
  - &p {name: one, from: contacts, to: a}
  - {<<: *p, name: two}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Systems["b"].Config.(*fakeConfig)
	if cfg.Systems["b"].Type != "fake" || b.URL != "https://b.example.com" || b.Rate.Per != time.Second {
		t.Errorf("merged system b: %+v", b)
	}
	if p := cfg.Pipelines[1]; p.Name != "two" || p.From != "public.contacts" || p.To != "a" {
		t.Errorf("merged pipeline: %+v", p)
	}
}

func TestWebhookSection(t *testing.T) {
	t.Parallel()
	const doc = `postgres: {url: "postgres://localhost/app"}
systems:
  crm:
    type: fake
    url: https://crm.example.com
    rate: {requests: 1, per: 1s}
    webhook: {secrets: [], sekrets: [x]}
  out:
    type: nokeys
    webhook: {secrets: [x]}
`
	_, err := loadString(t, doc, nil)
	want := "cdcd.yaml:7:15: systems.crm.webhook.secrets: required\n" +
		"cdcd.yaml:7:28: systems.crm.webhook.sekrets: unknown key (did you mean \"secrets\"?)\n" +
		"cdcd.yaml:10:5: systems.out.webhook: system type \"nokeys\" sends no webhooks (fake systems do)"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

func TestConflictSection(t *testing.T) {
	t.Parallel()
	const head = `postgres: {url: "postgres://localhost/app"}
systems:
  crm:
    type: fake
    url: https://crm.example.com
    webhook: {secrets: [s]}
pipelines:
  - name: in
    from: crm
    to: contacts
    object: contacts
    match: [email]
`
	cfg, err := loadString(t, head+`    conflict:
      strategy: merge
      then: [{prefer: crm}, newest, manual]
      skew: 30s
      fields: {price: [{prefer_unless_blank: local}, llm]}
      llm: {base_url: "https://llm.example.com/v1", model: m}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Pipelines[0].Conflict
	want := []ConflictRule{{Kind: "merge"}, {Kind: "prefer", Side: "crm"}, {Kind: "newest"}, {Kind: "manual"}}
	if !reflect.DeepEqual(c.Rules(), want) || c.Skew != 30*time.Second || c.Remind != DefaultConflictRemind ||
		!reflect.DeepEqual(c.Fields["price"], []ConflictRule{{Kind: "prefer_unless_blank", Side: "local"}, {Kind: "llm"}}) ||
		c.LLM.Timeout != conflict.DefaultLLMTimeout || c.LLM.Model != "m" {
		t.Fatalf("decoded %+v", c)
	}
	_, err = loadString(t, head+`    conflict:
      strategy: newst
      then: [prefer, {prefer: erp}, {newest: x}, llm]
      skew: -1s
`, nil)
	wantErr := "cdcd.yaml:13:5: pipelines[0].conflict.llm: required by the llm rule: base_url and model of an OpenAI-compatible endpoint\n" +
		"cdcd.yaml:14:17: pipelines[0].conflict.strategy: \"newst\" is not a rule; want merge, newest, manual, llm, {prefer: <system or local>} or {prefer_unless_blank: <system or local>} (did you mean \"newest\"?)\n" +
		"cdcd.yaml:15:14: pipelines[0].conflict.then[0]: prefer needs the side it prefers: {prefer: <system or local>}\n" +
		"cdcd.yaml:15:23: pipelines[0].conflict.then[1].prefer: \"erp\" is neither local nor \"crm\", the pipeline's system\n" +
		"cdcd.yaml:15:38: pipelines[0].conflict.then[2]: expected merge, newest, manual, llm, {prefer: <system or local>} or {prefer_unless_blank: <system or local>}\n" +
		"cdcd.yaml:16:7: pipelines[0].conflict.skew: must not be negative"
	if err == nil || err.Error() != wantErr {
		t.Fatalf("got\n%v\nwant\n%s", err, wantErr)
	}
}

// cdcd status reads the http section alone: a vendor secret unset in the
// operator's shell, or a problem elsewhere in the file, does not stop it;
// a problem in the http section is reported at its line.
func TestLoadHTTP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cdcd.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("CDCD_TEST_READ", "r-token")
	write(`postgres:
  url: ${CDCD_TEST_UNSET_URL}
http:
  listen: 127.0.0.1:9999
  read_token: ${CDCD_TEST_READ}
systems:
  crm:
    type: hubspot
    token: ${CDCD_TEST_UNSET_SECRET}
nonsense: 1
`)
	h, err := LoadHTTP(path)
	if err != nil {
		t.Fatal(err)
	}
	if h.Listen != "127.0.0.1:9999" || h.ReadToken != "r-token" {
		t.Errorf("http %+v, want listen 127.0.0.1:9999 and the read token", h)
	}
	write("postgres: {url: x}\n")
	if h, err := LoadHTTP(path); err != nil || h.Listen != Default().HTTP.Listen {
		t.Errorf("no http section: %+v, %v; want the default listen address", h, err)
	}
	write("http:\n  listen: 127.0.0.1:9999\n  admin_tokn: x\n")
	_, err = LoadHTTP(path)
	if err == nil || !strings.Contains(err.Error(), path+":3") || !strings.Contains(err.Error(), "admin_tokn") {
		t.Errorf("a misspelt http key: %v, want an error at line 3 naming it", err)
	}
}
