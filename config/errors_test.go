package config

import (
	"errors"
	"strings"
	"testing"
)

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	const pg = "postgres:\n  url: postgres://localhost/app\n"
	tests := []struct {
		name string
		src  string
		env  map[string]string
		want string // every problem, one per line
	}{
		// Syntax.
		{"syntax", "postgres:\n  url: [a\n", nil,
			"cdcd.yaml:2:8: sequence end token ']' not found"},
		{"duplicate key", pg + "log: {}\nlog: {}\n", nil,
			`cdcd.yaml:4:1: mapping key "log" already defined at [3:1]`},
		{"two documents", pg + "---\nlog: {}\n", nil,
			"cdcd.yaml:4:1: a config file holds one YAML document; remove the ---"},
		{"root not a mapping", "- a\n", nil,
			"cdcd.yaml:1:1: expected a mapping, got a list"},
		{"undefined alias", pg + "log: *nope\n", nil,
			"cdcd.yaml:3:6: log: alias to an undefined anchor"},

		// Unknown keys.
		{"unknown top-level key", pg + "pipeline: []\n", nil,
			`cdcd.yaml:3:1: pipeline: unknown key (did you mean "pipelines"?)`},
		{"unknown key without suggestion", pg + "zzz: 1\n", nil,
			`cdcd.yaml:3:1: zzz: unknown key`},
		{"unknown pipeline key", pg + "systems: {out: {type: nokeys}}\npipelines:\n  - name: a\n    from: t\n    to: out\n  - name: b\n    from: t\n    tp: out\n", nil,
			"cdcd.yaml:8:5: pipelines[1].to: required (a system)\n" +
				"cdcd.yaml:10:5: pipelines[1].tp: unknown key (did you mean \"to\"?)"},
		{"unknown plugin key", pg + "systems:\n  crm:\n    type: fake\n    url: https://x\n    tokn: x\n", nil,
			`cdcd.yaml:7:5: systems.crm.tokn: unknown key (did you mean "token"?)`},
		{"plugin takes no keys", pg + "systems:\n  out:\n    type: nokeys\n    path: /tmp/x\n", nil,
			`cdcd.yaml:6:5: systems.out.path: unknown key`},

		// Types.
		{"duration", pg + "  heartbeat: abc\n", nil,
			`cdcd.yaml:3:14: postgres.heartbeat: "abc" is not a duration`},
		{"duration without unit", pg + "  heartbeat: 30\n", nil,
			`cdcd.yaml:3:14: postgres.heartbeat: 30 is not a duration (add a unit, e.g. 30s)`},
		{"integer", pg + "kafka:\n  brokers: [k:9092]\n  topics: {partitions: six}\n", nil,
			`cdcd.yaml:5:24: kafka.topics.partitions: "six" is not an integer`},
		{"quoted integer", pg + "kafka:\n  brokers: [k:9092]\n  topics: {partitions: \"6\"}\n", nil,
			`cdcd.yaml:5:24: kafka.topics.partitions: "6" is not an integer`},
		{"integer overflow", pg + "systems: {crm: {type: fake, url: x, retries: 300}}\n", nil,
			`cdcd.yaml:3:46: systems.crm.retries: 300 is out of range`},
		{"boolean", pg + "kafka:\n  brokers: [k:9092]\n  topics: {create: yes}\n", nil,
			`cdcd.yaml:5:20: kafka.topics.create: "yes" is not a boolean (true or false)`},
		{"list expected", pg + "  tables: public.contacts\n", nil,
			`cdcd.yaml:3:11: postgres.tables: expected a list, got a string`},
		{"mapping expected", pg + "kafka: [k:9092]\n", nil,
			`cdcd.yaml:3:8: kafka: expected a mapping, got a list`},
		{"string expected", pg + "  slot: {a: b}\n", nil,
			`cdcd.yaml:3:10: postgres.slot: expected a string, got a mapping`},
		{"float", pg + "systems: {crm: {type: fake, url: x, ratio: half}}\n", nil,
			`cdcd.yaml:3:44: systems.crm.ratio: "half" is not a number`},

		// Interpolation.
		{"unset variable", "postgres:\n  url: ${DATABASE_URL}\n", nil,
			"cdcd.yaml:2:8: postgres.url: environment variable DATABASE_URL is not set (set it, or write ${DATABASE_URL:-default})"},
		{"bad reference", "postgres:\n  url: ${DATABASE-URL}\n", nil,
			`cdcd.yaml:2:8: postgres.url: invalid variable reference "${DATABASE-URL}" (use ${NAME} or ${NAME:-default}; $$ is a literal $)`},
		{"unterminated reference", "postgres:\n  url: \"${DATABASE_URL\"\n", nil,
			"cdcd.yaml:2:8: postgres.url: unterminated ${ (write $$ for a literal $)"},
		{"interpolated value of the wrong type", pg + "kafka:\n  brokers: [k:9092]\n  topics:\n    partitions: ${PARTS}\n", map[string]string{"PARTS": "hunter2"},
			"cdcd.yaml:6:17: kafka.topics.partitions: the value of ${PARTS} is not an integer"},

		// Systems.
		{"unknown system type", pg + "systems:\n  crm:\n    type: fak\n", nil,
			`cdcd.yaml:5:11: systems.crm.type: unknown system type "fak" (did you mean "fake"?); known types: fake, nokeys`},
		{"missing system type", pg + "systems:\n  crm:\n    url: x\n", nil,
			"cdcd.yaml:4:3: systems.crm.type: required"},
		{"null system", pg + "systems:\n  crm:\n", nil,
			"cdcd.yaml:4:3: systems.crm.type: required"},
		{"invalid system name", pg + "systems:\n  Out: {type: nokeys}\n", nil,
			`cdcd.yaml:4:3: systems.Out: "Out" is not a valid system name (a-z first, then a-z, 0-9, _ and -)`},
		{"plugin validation", pg + "systems:\n  crm:\n    type: fake\n    token: bad\n    rate:\n      per: 0s\n", nil,
			"cdcd.yaml:4:3: systems.crm.url: required\n" +
				"cdcd.yaml:4:3: systems.crm: token rejected\n" +
				"cdcd.yaml:8:7: systems.crm.rate.per: must be more than 0"},

		// Postgres.
		{"missing url", "log: {level: info}\n", nil,
			"cdcd.yaml:1:1: postgres.url: required (a postgres:// URL or key=value DSN)"},
		{"invalid url", "postgres:\n  url: postgres://me:hunter2@db:99999/app\n", nil,
			"cdcd.yaml:2:3: postgres.url: not a valid postgres:// URL or key=value DSN: invalid port"},
		{"invalid slot and publication", pg + "  slot: Main-Slot\n  publication: ''\n", nil,
			"cdcd.yaml:3:3: postgres.slot: \"Main-Slot\" is not a valid slot name (1 to 63 of a-z, 0-9 and _)\n" +
				"cdcd.yaml:4:3: postgres.publication: \"\" is not a valid publication name (1 to 63 of a-z, 0-9 and _)"},
		{"tables", pg + "  tables: [contacts, a.b.c, public.contacts, 1x]\n", nil,
			"cdcd.yaml:3:22: postgres.tables[1]: \"a.b.c\" is not a table name (schema.table or table)\n" +
				"cdcd.yaml:3:29: postgres.tables[2]: duplicate table \"public.contacts\"\n" +
				"cdcd.yaml:3:46: postgres.tables[3]: \"1x\" is not a table name (schema.table or table)"},
		{"intervals", pg + "  status_interval: 11s\n  heartbeat: -1s\n", nil,
			"cdcd.yaml:3:3: postgres.status_interval: 11s is out of range (more than 0, at most 10s)\n" +
				"cdcd.yaml:4:3: postgres.heartbeat: must not be negative (0 disables the heartbeat)"},

		// Kafka.
		{"kafka", pg + "kafka:\n  topic_prefix: 'a b'\n  compression: zstandard\n  topics: {partitions: 0}\n  batch: {size: 10, bytes: 100}\n  buffer: {events: 5, bytes: 99}\n", nil,
			"cdcd.yaml:3:1: kafka.brokers: required (a list of host:port)\n" +
				"cdcd.yaml:4:3: kafka.topic_prefix: \"a b\" is not a valid topic prefix (at most 200 of a-z, A-Z, 0-9, '.', '_' and '-')\n" +
				"cdcd.yaml:5:3: kafka.compression: \"zstandard\" is not one of none, gzip, snappy, lz4, zstd\n" +
				"cdcd.yaml:6:12: kafka.topics.partitions: must be at least 1\n" +
				"cdcd.yaml:8:12: kafka.buffer.events: must be at least 10\n" +
				"cdcd.yaml:8:23: kafka.buffer.bytes: must be at least 100"},
		{"kafka brokers", pg + "kafka:\n  brokers: [localhost, ':9092', 'k:0']\n  compression: lz5\n  format: debezum\n", nil,
			"cdcd.yaml:4:13: kafka.brokers[0]: \"localhost\" is not host:port\n" +
				"cdcd.yaml:4:24: kafka.brokers[1]: \":9092\" is not host:port\n" +
				"cdcd.yaml:4:33: kafka.brokers[2]: \"k:0\" is not host:port\n" +
				"cdcd.yaml:5:3: kafka.compression: \"lz5\" is not one of none, gzip, snappy, lz4, zstd (did you mean \"lz4\"?)\n" +
				"cdcd.yaml:6:3: kafka.format: \"debezum\" is not one of debezium, cdcd (did you mean \"debezium\"?)"},

		{"kafka group", pg + "kafka:\n  brokers: ['k:9092']\n  group: {session_timeout: 6s, heartbeat: 6s, partition_watch: 0s}\n", nil,
			"cdcd.yaml:5:32: kafka.group.heartbeat: must be more than 0 and less than kafka.group.session_timeout (6s); a third of it or less is usual\n" +
				"cdcd.yaml:5:47: kafka.group.partition_watch: must be more than 0"},
		{"kafka group timeouts", pg + "kafka:\n  brokers: ['k:9092']\n  group:\n    rebalance_timeout: 10s\n    drain_timeout: 0s\n", nil,
			"cdcd.yaml:6:5: kafka.group.rebalance_timeout: 10s is out of range (more than 10s: a member keeps 5s of it to commit and rejoin; at most 1h)\n" +
				"cdcd.yaml:7:5: kafka.group.drain_timeout: 0s is out of range (more than 0, at most 1h)"},
		{"kafka group timeouts too long", pg + "kafka:\n  brokers: ['k:9092']\n  group: {rebalance_timeout: 2h, drain_timeout: 61m}\n", nil,
			"cdcd.yaml:5:11: kafka.group.rebalance_timeout: 2h0m0s is out of range (more than 10s: a member keeps 5s of it to commit and rejoin; at most 1h)\n" +
				"cdcd.yaml:5:34: kafka.group.drain_timeout: 1h1m0s is out of range (more than 0, at most 1h)"},

		// HTTP and log.
		{"http and log", pg + "http: {listen: 8080, idle_timeout: 0s, max_connections: 0}\nlog: {level: verbose, format: text}\n", nil,
			"cdcd.yaml:3:8: http.listen: \"8080\" is not host:port\n" +
				"cdcd.yaml:3:22: http.idle_timeout: 0s must be more than 0\n" +
				"cdcd.yaml:3:40: http.max_connections: 0 must be at least 1\n" +
				"cdcd.yaml:4:7: log.level: \"verbose\" is not one of debug, info, warn, error\n" +
				"cdcd.yaml:4:23: log.format: \"text\" is not one of json, console"},

		// Pipelines.
		{"pipelines", pg + "  tables: [contacts]\nsystems:\n  out: {type: nokeys}\npipelines:\n" +
			"  - from: contacts\n    to: out\n" +
			"  - name: Bad_Name\n    from: orders\n    to: outt\n" +
			"  - name: a\n    from: a.b.c\n    to: out\n" +
			"  - name: a\n    from: out\n    to: out\n", nil,
			"cdcd.yaml:7:5: pipelines[0].name: required\n" +
				"cdcd.yaml:9:5: pipelines[1].name: \"Bad_Name\" is not a valid pipeline name (a-z or 0-9 first, then a-z, 0-9, _ and -)\n" +
				"cdcd.yaml:10:5: pipelines[1].from: table \"public.orders\" is not in postgres.tables\n" +
				"cdcd.yaml:11:5: pipelines[1].to: no system named \"outt\" (did you mean \"out\"?)\n" +
				"cdcd.yaml:13:5: pipelines[2].from: \"a.b.c\" is neither a table (schema.table or table) nor a system\n" +
				"cdcd.yaml:15:5: pipelines[3].name: duplicate pipeline name \"a\" (also pipelines[2])\n" +
				"cdcd.yaml:15:5: pipelines[3].object: required: the system's entity whose changes the pipeline applies (contacts, products, ...)\n" +
				"cdcd.yaml:15:5: pipelines[3].match: required: the local column(s) a record not linked yet is matched on, e.g. [email] (they need a unique index)\n" +
				"cdcd.yaml:16:5: pipelines[3].from: system \"out\" has no webhook: section; add one (its secrets) so cdcd can receive its changes"},
		{"pipeline not a mapping", pg + "pipelines: [contacts]\n", nil,
			"cdcd.yaml:3:13: pipelines[0]: expected a mapping, got a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadString(t, tt.src, tt.env)
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.Problems) != strings.Count(tt.want, "\n")+1 {
				t.Errorf("want an *Errors with one problem per line, got %#v", err)
			}
			if cfg != nil {
				t.Error("config returned with an error")
			}
			for _, secret := range []string{"hunter2"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error reveals a secret: %s", err)
				}
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	keys := []string{"name", "from", "to"}
	for in, want := range map[string]string{
		"tp":   ` (did you mean "to"?)`,
		"nmae": ` (did you mean "name"?)`,
		"form": ` (did you mean "from"?)`,
		"x":    "",
		"zzzz": "",
	} {
		if got := suggest(in, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
