package deploy

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/config"
)

const dockerfile = "docker/Dockerfile"

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
	line      int
}

func parseDockerfile(path string) ([]instruction, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ins []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		ins = append(ins, instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start})
		cur.Reset()
	}
	return ins, nil
}

// buildAsDockerfile runs the Dockerfile's go build command in the
// repository with VERSION set, writing into dir what it writes into /out,
// and returns the binary.
func buildAsDockerfile(dir, version string) (string, error) {
	ins, err := parseDockerfile(dockerfile)
	if err != nil {
		return "", err
	}
	for _, in := range ins {
		if in.cmd != "RUN" || !strings.Contains(in.args, "go build") {
			continue
		}
		script := in.args
		for strings.HasPrefix(script, "--") { // RUN --mount=... options
			_, script, _ = strings.Cut(script, " ")
			script = strings.TrimSpace(script)
		}
		script = strings.ReplaceAll(script, "/out/", dir+"/")
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "VERSION="+version, "COMMIT="+testCommit)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s:%d: %s: %v\n%s", dockerfile, in.line, script, err, out)
		}
		return filepath.Join(dir, "cdcd"), nil
	}
	return "", fmt.Errorf("%s: no RUN instruction runs go build", dockerfile)
}

// TestDockerfile checks the image's build and runtime stages: the binary
// the build stage makes is static and reports the stamped version, the
// toolchain is go.mod's, and the runtime stage runs cdcd as a non-root
// user with a command line cdcd accepts, exposing http.listen's port.
func TestDockerfile(t *testing.T) {
	ins, err := parseDockerfile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	bin := cdcdBinary(t)

	t.Run("static", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked (%v): the distroless/static image has no libc", bin, p.Type)
			}
		}
		if fi, err := os.Stat(bin); err == nil {
			t.Logf("binary: %.1f MiB", float64(fi.Size())/(1<<20))
		}
	})

	t.Run("version", func(t *testing.T) {
		out, code := runCdcd(t, nil, "version")
		if code != 0 || !strings.Contains(out, testVersion) || !strings.Contains(out, "commit "+testCommit[:12]) {
			t.Errorf("cdcd version: exit %d, %q; want the stamped %q and commit %s", code, out, testVersion, testCommit[:12])
		}
	})

	t.Run("toolchain", func(t *testing.T) {
		mod, err := os.ReadFile("../go.mod")
		if err != nil {
			t.Fatal(err)
		}
		var goVersion string
		for line := range strings.SplitSeq(string(mod), "\n") {
			if v, ok := strings.CutPrefix(line, "go "); ok {
				goVersion = strings.TrimSpace(v)
			}
		}
		if want := (instruction{"ARG", "GO_VERSION=" + goVersion, 0}); len(ins) == 0 || ins[0].cmd != want.cmd || ins[0].args != want.args {
			t.Errorf("%s does not start with ARG %s (go.mod's toolchain)", dockerfile, want.args)
		}
	})

	// The runtime stage: everything after the last FROM.
	last := 0
	stages := 0
	for i, in := range ins {
		if in.cmd == "FROM" {
			last, stages = i, stages+1
		}
	}
	final := ins[last:]
	if stages < 2 {
		t.Fatalf("%s has %d stage(s), want a build stage and a runtime stage", dockerfile, stages)
	}
	if base := final[0].args; !strings.HasPrefix(base, "gcr.io/distroless/static") {
		t.Errorf("runtime stage FROM %s, want gcr.io/distroless/static (CA certificates, no shell)", base)
	}
	get := func(cmd string) []instruction {
		var out []instruction
		for _, in := range final {
			if in.cmd == cmd {
				out = append(out, in)
			}
		}
		return out
	}
	if users := get("USER"); len(users) == 0 {
		t.Error("runtime stage has no USER: cdcd would run as root")
	} else if u, _, _ := strings.Cut(users[len(users)-1].args, ":"); u == "root" || u == "0" {
		t.Errorf("runtime stage runs as %q", users[len(users)-1].args)
	}
	execForm := func(cmd string) []string {
		t.Helper()
		in := get(cmd)
		if len(in) != 1 {
			t.Fatalf("runtime stage has %d %s instructions, want 1", len(in), cmd)
		}
		var args []string
		if err := json.Unmarshal([]byte(in[0].args), &args); err != nil {
			t.Fatalf("%s:%d: %s is not in exec form (a JSON array), so SIGTERM would reach a shell: %v", dockerfile, in[0].line, cmd, err)
		}
		return args
	}
	entry, command := execForm("ENTRYPOINT"), execForm("CMD")
	copied := false
	for _, in := range get("COPY") {
		if strings.HasSuffix(in.args, " "+entry[0]) && strings.Contains(in.args, "cdcd") {
			copied = true
		}
	}
	if len(entry) != 1 || !copied {
		t.Errorf("ENTRYPOINT %q, want only the path the binary is copied to", entry)
	}
	inv := checkArgs(t, dockerfile+" CMD", command)
	if inv.config == "" {
		t.Error("CMD names no config")
	}

	_, port, _ := strings.Cut(config.Default().HTTP.Listen, ":")
	if exposed := get("EXPOSE"); len(exposed) != 1 || exposed[0].args != port {
		t.Errorf("EXPOSE %v, want http.listen's default port %s", exposed, port)
	}
}
