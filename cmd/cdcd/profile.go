package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startCPUProfile writes a CPU profile to the file named by
// $CDCD_CPUPROFILE, when it is set, until the returned function is called.
// It is meant for benchmarks: the profile is complete only after a clean
// stop.
func startCPUProfile() (stop func(), err error) {
	path := os.Getenv("CDCD_CPUPROFILE")
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("CDCD_CPUPROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("CDCD_CPUPROFILE: start cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
