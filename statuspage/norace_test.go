//go:build !race

package statuspage

const raceSlowdown = 1
