package hubspot

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// properties renders mapped fields as HubSpot property values, which are
// strings: numbers in plain decimal, booleans as true/false, null as ""
// (which clears the property), arrays of scalars joined with ";" (multiple
// checkboxes). Nested objects are refused. Errors name the field, never
// its value.
func properties(fields map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(fields))
	for name, v := range fields {
		s, err := propertyValue(v)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", name, err)
		}
		out[name] = s
	}
	return out, nil
}

func propertyValue(v any) (string, error) {
	switch v := v.(type) {
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			s, err := scalarValue(e)
			if err != nil {
				return "", fmt.Errorf("element %d: %w", i, err)
			}
			parts[i] = s
		}
		return strings.Join(parts, ";"), nil
	case map[string]any:
		return "", fmt.Errorf("a nested object is not a HubSpot property; map each value to a property name")
	}
	return scalarValue(v)
}

func scalarValue(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case json.Number:
		return v.String(), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	}
	return "", fmt.Errorf("values of type %T are not supported", v)
}
