package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const unitFile = "systemd/cdcd.service"

// unit is a systemd unit file: each section's settings in order, a key
// given several times keeping every value.
type unit map[string][][2]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a setting: %q", path, i+1, line)
			}
			u[section] = append(u[section], [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	return u
}

// get returns every value of key in section.
func (u unit) get(section, key string) []string {
	var vs []string
	for _, kv := range u[section] {
		if kv[0] == key {
			vs = append(vs, kv[1])
		}
	}
	return vs
}

// TestSystemdUnit checks the unit's command line against cdcd, its
// sandbox, and, where systemd-analyze is installed, that systemd accepts
// the unit and rates its exposure OK.
func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, unitFile)
	one := func(key string) string {
		t.Helper()
		vs := u.get("Service", key)
		if len(vs) != 1 {
			t.Fatalf("Service.%s given %d times, want once", key, len(vs))
		}
		return vs[0]
	}

	// The command line, with the unit's own Environment= defaults.
	env := map[string]string{}
	for _, e := range u.get("Service", "Environment") {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	execStart := strings.Fields(os.Expand(one("ExecStart"), func(k string) string { return env[k] }))
	if execStart[0] != "/usr/local/bin/cdcd" {
		t.Errorf("ExecStart runs %s, want /usr/local/bin/cdcd", execStart[0])
	}
	inv := checkArgs(t, unitFile, execStart[1:])
	if dir := "/etc/" + one("ConfigurationDirectory"); filepath.Dir(inv.config) != dir {
		t.Errorf("--config %s is not in the ConfigurationDirectory %s", inv.config, dir)
	}

	// A config error exits 2, which must not restart in a loop.
	if _, code := runCdcd(t, nil, "run", "--no-such-flag"); strconv.Itoa(code) != one("RestartPreventExitStatus") {
		t.Errorf("cdcd exits %d on a usage error; RestartPreventExitStatus=%s", code, one("RestartPreventExitStatus"))
	}
	if stop := strings.TrimSuffix(one("TimeoutStopSec"), "s"); stop == "" || mustAtoi(t, stop) < 15 {
		t.Errorf("TimeoutStopSec=%s: cdcd needs about ten seconds to drain and close", stop)
	}

	for key, want := range map[string]string{
		"DynamicUser":             "yes",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"CapabilityBoundingSet":   "",
		"RestrictNamespaces":      "yes",
		"MemoryDenyWriteExecute":  "yes",
		"SystemCallArchitectures": "native",
		"StateDirectory":          "cdcd",
	} {
		if got := u.get("Service", key); len(got) == 0 || got[len(got)-1] != want {
			t.Errorf("Service.%s = %q, want %q", key, got, want)
		}
	}
	if len(u.get("Service", "SystemCallFilter")) == 0 || len(u.get("Service", "RestrictAddressFamilies")) == 0 {
		t.Error("no SystemCallFilter or RestrictAddressFamilies")
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the unit is not verified by systemd")
		return
	}
	// verify wants the executable to exist: point the unit at the binary
	// under test.
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "cdcd.service")
	b = bytes.ReplaceAll(b, []byte("/usr/local/bin/cdcd"), []byte(cdcdBinary(t)))
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", tmp).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command(analyze, "security", "--offline=true", tmp).CombinedOutput()
	if err != nil {
		t.Logf("systemd-analyze security --offline: %v (systemd before 250)", err)
		return
	}
	m := regexp.MustCompile(`Overall exposure level for cdcd\.service: ([0-9.]+) (\w+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: no overall exposure level in:\n%s", out)
	}
	t.Logf("systemd-analyze security: exposure %s %s", m[1], m[2])
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2 {
		t.Errorf("exposure %s %s, want at most 2 (OK)", m[1], m[2])
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}
