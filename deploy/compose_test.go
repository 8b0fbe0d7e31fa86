package deploy

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

const composeDir = "compose"

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string            `yaml:"context"`
		Dockerfile string            `yaml:"dockerfile"`
		Args       map[string]string `yaml:"args"`
	} `yaml:"build"`
	Command     []string       `yaml:"command"`
	Environment map[string]any `yaml:"environment"`
	Volumes     []string       `yaml:"volumes"`
	Ports       []string       `yaml:"ports"`
	Expose      []string       `yaml:"expose"`
	Deploy      struct {
		Replicas *int `yaml:"replicas"`
	} `yaml:"deploy"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

func (s composeService) env() map[string]string {
	env := map[string]string{}
	for k, v := range s.Environment {
		env[k] = fmt.Sprint(v)
	}
	return env
}

// TestCompose checks that compose.yaml starts Postgres, a Kafka broker, one
// capture cdcd and two sink workers, built from the Dockerfile, and that
// the config they mount validates and names the same Postgres and brokers
// the compose file starts.
func TestCompose(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(composeDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatalf("parse compose.yaml: %v", err)
	}
	ins, err := parseDockerfile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	pg, ok := file.Services["postgres"]
	if !ok {
		t.Fatal("no postgres service")
	}
	if !slices.Contains(pg.Command, "wal_level=logical") {
		t.Errorf("postgres command %q does not set wal_level=logical", pg.Command)
	}
	for _, v := range pg.Volumes {
		if src, _, _ := strings.Cut(v, ":"); strings.HasSuffix(src, ".sql") {
			if _, err := os.Stat(filepath.Join(composeDir, src)); err != nil {
				t.Errorf("postgres init script: %v", err)
			}
		}
	}
	kafka, ok := file.Services["kafka"]
	if !ok {
		t.Fatal("no kafka service")
	}
	var advertised []string
	for l := range strings.SplitSeq(kafka.env()["KAFKA_ADVERTISED_LISTENERS"], ",") {
		if _, hostport, ok := strings.Cut(l, "://"); ok {
			advertised = append(advertised, hostport)
		}
	}

	workers := map[string]int{}
	for name, svc := range file.Services {
		if !slices.Contains(svc.Command, "run") {
			continue
		}
		where := "compose.yaml services." + name
		if svc.Build == nil || filepath.Join(composeDir, svc.Build.Context, svc.Build.Dockerfile) != filepath.Join("..", "deploy", dockerfile) {
			t.Errorf("%s: build %+v, want context ../.. and dockerfile deploy/%s", where, svc.Build, dockerfile)
		}
		if svc.Build != nil {
			for arg := range svc.Build.Args {
				if !slices.ContainsFunc(ins, func(in instruction) bool { return in.cmd == "ARG" && strings.HasPrefix(in.args+"=", arg+"=") }) {
					t.Errorf("%s: build arg %s is not an ARG of %s", where, arg, dockerfile)
				}
			}
			if _, ok := svc.Build.Args["VERSION"]; !ok {
				t.Errorf("%s: the image is built without a VERSION to stamp", where)
			}
		}
		inv := checkArgs(t, where, svc.Command)
		replicas := 1
		if svc.Deploy.Replicas != nil {
			replicas = *svc.Deploy.Replicas
		}
		workers[inv.role] += replicas

		// The config file mounted where --config reads it.
		var cfgPath string
		for _, v := range svc.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && parts[1] == inv.config {
				cfgPath = filepath.Join(composeDir, parts[0])
			}
		}
		if cfgPath == "" {
			t.Errorf("%s: nothing mounted at %s", where, inv.config)
			continue
		}
		env := svc.env()
		validate(t, where, cfgPath, env)
		text, err := os.ReadFile(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := readConfig(t, cfgPath, text, env)

		u, err := url.Parse(cfg.Postgres.URL)
		if err != nil {
			t.Fatalf("%s: postgres.url: %v", where, err)
		}
		pass, _ := u.User.Password()
		pgEnv := pg.env()
		if u.Hostname() != "postgres" || u.Port() != "5432" || u.User.Username() != pgEnv["POSTGRES_USER"] ||
			pass != pgEnv["POSTGRES_PASSWORD"] || strings.TrimPrefix(u.Path, "/") != pgEnv["POSTGRES_DB"] {
			t.Errorf("%s: postgres.url %s is not the postgres service's database (user %s, database %s, port 5432)",
				where, u.Redacted(), pgEnv["POSTGRES_USER"], pgEnv["POSTGRES_DB"])
		}
		if cfg.Kafka == nil || len(cfg.Kafka.Brokers) == 0 {
			t.Errorf("%s: the config has no kafka brokers; --role %s needs them", where, inv.role)
		} else {
			for _, broker := range cfg.Kafka.Brokers {
				if !slices.Contains(advertised, broker) {
					t.Errorf("%s: broker %s is not one the kafka service advertises (%v)", where, broker, advertised)
				}
			}
		}
		for _, dep := range []string{"postgres", "kafka"} {
			if svc.DependsOn[dep].Condition != "service_healthy" {
				t.Errorf("%s: does not wait for %s to be healthy", where, dep)
			}
		}

		port := listenPort(t, where, cfg)
		reachable := slices.Contains(svc.Expose, port)
		for _, p := range svc.Ports {
			if _, container, ok := strings.Cut(p, ":"); ok && container == port {
				reachable = true
			}
		}
		if !reachable {
			t.Errorf("%s: neither ports %v nor expose %v has http.listen's port %s", where, svc.Ports, svc.Expose, port)
		}
	}
	if workers["capture"] != 1 || workers["sinks"] != 2 || len(workers) != 2 {
		t.Errorf("cdcd processes by role: %v, want one capture and two sinks", workers)
	}
}
