package daemon

import "fmt"

// Role is what one cdcd process runs. With Kafka the work splits across
// processes: RoleCapture runs only the reader (one per slot; a second one
// stands by), RoleSinks only the pipelines' writers as Kafka consumer
// groups, RoleAll both. The in-process bus runs RoleAll only.
type Role int

const (
	RoleAll Role = iota
	RoleCapture
	RoleSinks
)

// ParseRole reads a role as --role names it: capture, sinks or all.
func ParseRole(s string) (Role, error) {
	switch s {
	case "all", "":
		return RoleAll, nil
	case "capture":
		return RoleCapture, nil
	case "sinks":
		return RoleSinks, nil
	}
	return 0, configError(fmt.Errorf("--role %q: want capture, sinks or all", s))
}

func (r Role) String() string { return [...]string{"all", "capture", "sinks"}[r] }
