package config

import (
	"reflect"
	"testing"
)

func TestInterpolate(t *testing.T) {
	t.Parallel()
	env := envOf(map[string]string{"A": "x", "EMPTY": "", "URL": "postgres://u:p@h/db"})
	tests := []struct {
		in, want string
		vars     []string
		probs    []string
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "x", vars: []string{"A"}},
		{in: "pre-${A}-${A}-post", want: "pre-x-x-post", vars: []string{"A", "A"}},
		{in: "${EMPTY}", want: "", vars: []string{"EMPTY"}},
		{in: "${EMPTY:-d}", want: "d", vars: []string{"EMPTY"}},
		{in: "${UNSET:-def:ault}", want: "def:ault", vars: []string{"UNSET"}},
		{in: "${UNSET:-}", want: "", vars: []string{"UNSET"}},
		{in: "${A:-d}", want: "x", vars: []string{"A"}},
		{in: "$${A}", want: "${A}"},
		{in: "$$A and $$", want: "$A and $"},
		{in: "cost: $5 $", want: "cost: $5 $"},
		{in: "${UNSET}", want: "", vars: []string{"UNSET"},
			probs: []string{"environment variable UNSET is not set (set it, or write ${UNSET:-default})"}},
		{in: "${1A}", want: "",
			probs: []string{`invalid variable reference "${1A}" (use ${NAME} or ${NAME:-default}; $$ is a literal $)`}},
		{in: "a${A", want: "a", probs: []string{"unterminated ${ (write $$ for a literal $)"}},
	}
	for _, tt := range tests {
		got, vars, probs := interpolate(tt.in, env)
		if got != tt.want || !reflect.DeepEqual(vars, tt.vars) || !reflect.DeepEqual(probs, tt.probs) {
			t.Errorf("interpolate(%q) = %q, %q, %q; want %q, %q, %q", tt.in, got, vars, probs, tt.want, tt.vars, tt.probs)
		}
	}
}

// A value from the environment is data: YAML syntax in it (": ", newlines,
// flow indicators) cannot add keys or change the document's structure.
func TestInterpolationCannotInjectYAML(t *testing.T) {
	t.Parallel()
	evil := "x\nlog:\n  level: debug\nhttp: {listen: 0.0.0.0:1}\n"
	cfg, err := loadString(t, `
postgres:
  url: postgres://localhost/app
http:
  admin_token: ${TOKEN}
systems:
  crm:
    type: fake
    url: "${CRM_URL}"
    token: pre ${TOKEN} post
`, map[string]string{"TOKEN": evil, "CRM_URL": "https://h: {a: b}"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.AdminToken != evil || cfg.HTTP.Listen != "127.0.0.1:8080" || cfg.Log.Level != "info" {
		t.Errorf("injected: %+v %+v", cfg.HTTP, cfg.Log)
	}
	crm := cfg.Systems["crm"].Config.(*fakeConfig)
	if crm.URL != "https://h: {a: b}" || crm.Token != "pre "+evil+" post" {
		t.Errorf("plugin values: %+v", crm)
	}
}

func TestInterpolationTypedValues(t *testing.T) {
	t.Parallel()
	cfg, err := loadString(t, `
postgres:
  url: postgres://localhost/app
  heartbeat: ${HB:-5s}
  tables: ["${SCHEMA}.contacts"]
kafka:
  brokers: ["${KAFKA_HOST}:9092"]
  topics:
    create: ${CREATE}
    partitions: ${PARTS:-3}
systems:
  crm:
    type: fake
    url: x
    ratio: ${RATIO}
`, map[string]string{"SCHEMA": "crm", "KAFKA_HOST": "k1", "CREATE": "false", "RATIO": "0.25"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Postgres.Heartbeat.String() != "5s" || cfg.Postgres.Tables[0] != "crm.contacts" ||
		cfg.Kafka.Brokers[0] != "k1:9092" || cfg.Kafka.Topics.Create || cfg.Kafka.Topics.Partitions != 3 ||
		cfg.Systems["crm"].Config.(*fakeConfig).Ratio != 0.25 {
		t.Errorf("got %+v %+v", cfg.Postgres, cfg.Kafka)
	}
}

// Keys are never interpolated.
func TestInterpolationNotInKeys(t *testing.T) {
	t.Parallel()
	_, err := loadString(t, minimal+"${KEY}: 1\n", map[string]string{"KEY": "log"})
	want := "cdcd.yaml:2:1: ${KEY}: unknown key"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
