package main

import (
	"runtime/debug"
	"strings"
)

// version and commit are set at build time:
//
//	go build -ldflags "-X main.version=1.4.0 -X main.commit=$(git rev-parse HEAD)" ./cmd/cdcd
//
// Without them, cdcd reads what the Go toolchain stamped into the binary:
// the module version (go install ...@v1.4.0) and the VCS revision of a
// build from a checkout.
var (
	version = ""
	commit  = ""
)

// build describes the running binary.
type build struct {
	version, commit, time string
	dirty                 bool
	goVersion             string
}

func currentBuild() build {
	info, _ := debug.ReadBuildInfo()
	return buildOf(info, version, commit)
}

// buildOf reads a build's description from info (which may be nil),
// the -ldflags values taking precedence.
func buildOf(info *debug.BuildInfo, ldVersion, ldCommit string) build {
	b := build{version: ldVersion, commit: ldCommit}
	if info != nil {
		b.goVersion = info.GoVersion
		if b.version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.commit == "" {
					b.commit = s.Value
				}
			case "vcs.time":
				b.time = s.Value
			case "vcs.modified":
				b.dirty = s.Value == "true" && ldCommit == ""
			}
		}
	}
	if b.version == "" {
		b.version = "dev"
	}
	return b
}

// String is what `cdcd version` prints: "1.4.0 (commit 0123abcd4567,
// 2026-12-01T10:00:00Z, go1.24.1)", with "-dirty" after a commit built
// with uncommitted changes.
func (b build) String() string {
	var details []string
	if b.commit != "" {
		c := b.commit
		if len(c) > 12 {
			c = c[:12]
		}
		if b.dirty {
			c += "-dirty"
		}
		details = append(details, "commit "+c)
	}
	if b.time != "" {
		details = append(details, b.time)
	}
	if b.goVersion != "" {
		details = append(details, b.goVersion)
	}
	if len(details) == 0 {
		return b.version
	}
	return b.version + " (" + strings.Join(details, ", ") + ")"
}
