package hubspot

import (
	"fmt"
	"slices"
	"strings"
)

// SetOptions makes prop of object type typ an enumeration (dropdown)
// property with the given options, as configured in HubSpot's property
// settings: writing any other non-empty value refuses the input with a
// validation error (INVALID_OPTION, status 400 or a per-input 207 error).
// Calling it again replaces the options, as when an admin adds one;
// calling it with no options lifts the restriction.
func (s *Server) SetOptions(typ, prop string, options ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enums == nil {
		s.enums = map[string]map[string][]string{}
	}
	if s.enums[typ] == nil {
		s.enums[typ] = map[string][]string{}
	}
	if len(options) == 0 {
		delete(s.enums[typ], prop)
		return
	}
	s.enums[typ][prop] = slices.Clone(options)
}

// invalidOption returns the problem with value v of property name, or nil
// when the property is not an enumeration or v is one of its options. The
// empty value clears a property and is always valid.
func (s *Server) invalidOption(typ, name, v string) *detail {
	if v == "" {
		return nil
	}
	s.mu.Lock()
	options, ok := s.enums[typ][name]
	s.mu.Unlock()
	if !ok || slices.Contains(options, v) {
		return nil
	}
	return &detail{
		Message: fmt.Sprintf("%s was not one of the allowed options: [%s]", v, strings.Join(options, ", ")),
		Code:    "INVALID_OPTION",
		Context: map[string][]string{"propertyName": {name}},
	}
}
