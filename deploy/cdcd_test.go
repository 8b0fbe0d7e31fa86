// Package deploy checks the packaging in this directory (the Dockerfile,
// the compose file, the Helm chart and the systemd unit) against the cdcd
// binary built the way the Dockerfile builds it: every command line must be
// one cdcd accepts, every config it mounts must validate, and the ports and
// probes must meet the config's http.listen.
package deploy

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/goccy/go-yaml"
)

// testVersion and testCommit are what the test stamps into the binary.
const (
	testVersion = "v0.0.0-deploytest"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	tmpDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if tmpDir != "" {
		os.RemoveAll(tmpDir)
	}
	os.Exit(code)
}

// cdcdBinary builds cdcd once with the Dockerfile's build command.
func cdcdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if tmpDir, buildErr = os.MkdirTemp("", "cdcd-deploy"); buildErr != nil {
			return
		}
		binPath, buildErr = buildAsDockerfile(tmpDir, testVersion)
	})
	if buildErr != nil {
		t.Fatalf("build cdcd as deploy/docker/Dockerfile does: %v", buildErr)
	}
	return binPath
}

// runCdcd runs the binary with only env (and PATH) in its environment.
func runCdcd(t *testing.T, env map[string]string, args ...string) (out string, code int) {
	t.Helper()
	cmd := exec.Command(cdcdBinary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run cdcd %q: %v", args, err)
	}
	return b.String(), code
}

// invocation is what a manifest asks cdcd to do.
type invocation struct {
	config, role string
}

// checkArgs checks that args (without the program name) are a cdcd command
// line the binary accepts, and returns its --config and --role.
func checkArgs(t *testing.T, where string, args []string) invocation {
	t.Helper()
	if len(args) == 0 {
		t.Fatalf("%s: no arguments: cdcd alone prints its help and exits", where)
	}
	// Cobra parses every flag before it answers --help: an unknown
	// subcommand or flag, or a flag without its value, fails here.
	out, code := runCdcd(t, nil, append(slices.Clone(args), "--help")...)
	if code != 0 {
		t.Fatalf("%s: cdcd %s: exit %d: %s", where, strings.Join(args, " "), code, out)
	}
	if want := "cdcd " + args[0] + " [flags]"; !strings.Contains(out, want) {
		t.Fatalf("%s: cdcd %s --help is not the help of %q:\n%s", where, strings.Join(args, " "), args[0], out)
	}
	inv := invocation{config: flagValue(args, "--config", "-c"), role: flagValue(args, "--role", "")}
	if inv.config == "" {
		t.Errorf("%s: %q does not name its config with --config (the default is cdcd.yaml in the working directory)", where, args)
	}
	if args[0] == "run" && inv.role != "" {
		// run reads --role before the config: a role it refuses fails
		// on it, one it accepts goes on to the (missing) config.
		out, _ := runCdcd(t, nil, "run", "--config", filepath.Join(t.TempDir(), "missing.yaml"), "--role", inv.role)
		if !strings.Contains(out, "read config") {
			t.Errorf("%s: cdcd run refuses --role %q: %s", where, inv.role, out)
		}
	}
	return inv
}

// flagValue returns the value of a flag given as "--name v", "--name=v" or
// "-s v".
func flagValue(args []string, long, short string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, long+"="); ok {
			return v
		}
		if (a == long || (short != "" && a == short)) && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// validate runs cdcd validate on a config file with env as the process
// environment.
func validate(t *testing.T, where, path string, env map[string]string) {
	t.Helper()
	out, code := runCdcd(t, env, "validate", "--config", path)
	if code != 0 || !strings.Contains(out, ": valid (") {
		t.Errorf("%s: cdcd validate %s: exit %d:\n%s", where, path, code, out)
	}
}

// cdcdConfig is the part of a config file the manifests must agree with.
type cdcdConfig struct {
	Postgres struct {
		URL    string   `yaml:"url"`
		Tables []string `yaml:"tables"`
	} `yaml:"postgres"`
	Kafka *struct {
		Brokers []string `yaml:"brokers"`
	} `yaml:"kafka"`
	HTTP struct {
		Listen string `yaml:"listen"`
	} `yaml:"http"`
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// readConfig parses a config file's text with ${VAR} and ${VAR:-default}
// expanded from env, and returns the variables it requires (no default).
func readConfig(t *testing.T, where string, text []byte, env map[string]string) (cfg cdcdConfig, required []string) {
	t.Helper()
	var lines []string
	for line := range strings.SplitSeq(string(text), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			lines = append(lines, line)
		}
	}
	expanded := envRef.ReplaceAllStringFunc(strings.Join(lines, "\n"), func(ref string) string {
		m := envRef.FindStringSubmatch(ref)
		if v := env[m[1]]; v != "" {
			return v
		}
		if m[2] == "" {
			required = append(required, m[1])
		}
		return m[3]
	})
	if err := yaml.Unmarshal([]byte(expanded), &cfg); err != nil {
		t.Fatalf("%s: parse config: %v", where, err)
	}
	return cfg, required
}

// listenPort returns the port of http.listen, failing when it is bound to
// loopback only, which probes and peers from outside cannot reach.
func listenPort(t *testing.T, where string, cfg cdcdConfig) string {
	t.Helper()
	host, port, err := net.SplitHostPort(cfg.HTTP.Listen)
	if err != nil {
		t.Fatalf("%s: http.listen %q: %v (the default, 127.0.0.1:8080, is loopback only)", where, cfg.HTTP.Listen, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		t.Errorf("%s: http.listen %q is loopback only: probes and webhooks come from outside; use :%s", where, cfg.HTTP.Listen, port)
	}
	return port
}
