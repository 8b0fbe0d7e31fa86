//go:build !race

package e2etest

const race = false

// Slowdown is 1 without the race detector: the figures hold as stated.
const Slowdown = 1
