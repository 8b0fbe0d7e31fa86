package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startCPUProfile writes a CPU profile to the file named by
// $CDCD_CPUPROFILE, when it is set, until the returned function is called,
// and then the allocations since the start to $CDCD_ALLOCPROFILE, when it
// is set. It is meant for benchmarks: the profiles are complete only
// after a clean stop.
func startCPUProfile() (stop func(), err error) {
	path := os.Getenv("CDCD_CPUPROFILE")
	allocs := os.Getenv("CDCD_ALLOCPROFILE")
	if path == "" {
		return func() { writeAllocProfile(allocs) }, nil
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
		writeAllocProfile(allocs)
	}, nil
}

// writeAllocProfile writes the allocation profile to path, unless path is
// empty. It is best effort: the process is stopping.
func writeAllocProfile(path string) {
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "CDCD_ALLOCPROFILE: %v\n", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		fmt.Fprintf(os.Stderr, "CDCD_ALLOCPROFILE: %v\n", err)
	}
}
