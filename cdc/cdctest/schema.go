package cdctest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// connectSchema is a Kafka Connect JSON schema, as a schema block holds it.
type connectSchema struct {
	Type     string          `json:"type"`
	Optional bool            `json:"optional"`
	Name     string          `json:"name"`
	Field    string          `json:"field"`
	Fields   []connectSchema `json:"fields"`
	Items    *connectSchema  `json:"items"`
}

// unavailable is the placeholder of an unchanged TOASTed value.
const unavailable = `"__debezium_unavailable_value"`

// CheckSchema reports how payload breaks schema (a Kafka Connect JSON
// schema as Debezium's converter writes it with schemas.enable=true), one
// fault a line: a field the schema does not declare, a required field missing or null, a
// value of the wrong JSON type or out of its type's range. It returns nil
// when a schema-aware consumer would read payload.
func CheckSchema(schema, payload []byte) error {
	var s connectSchema
	if err := json.Unmarshal(schema, &s); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	return checkValue(&s, json.RawMessage(payload), "$")
}

func checkValue(s *connectSchema, v json.RawMessage, path string) error {
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		if !s.Optional {
			return fmt.Errorf("%s: null for a required %s", path, s.Type)
		}
		return nil
	}
	if bytes.Equal(v, []byte(unavailable)) {
		return nil // Debezium writes it whatever the type
	}
	switch s.Type {
	case "struct":
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(v, &obj); err != nil {
			return fmt.Errorf("%s: %s is not an object", path, v)
		}
		declared := map[string]bool{}
		var errs []error
		for i := range s.Fields {
			f := &s.Fields[i]
			declared[f.Field] = true
			errs = append(errs, checkValue(f, obj[f.Field], path+"."+f.Field))
		}
		for k := range obj {
			if !declared[k] {
				errs = append(errs, fmt.Errorf("%s: field %q is not in the schema", path, k))
			}
		}
		return errors.Join(errs...)
	case "array":
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return fmt.Errorf("%s: %s is not an array", path, v)
		}
		if s.Items == nil {
			return fmt.Errorf("%s: array schema without items", path)
		}
		var errs []error
		for i, it := range items {
			errs = append(errs, checkValue(s.Items, it, fmt.Sprintf("%s[%d]", path, i)))
		}
		return errors.Join(errs...)
	case "int8", "int16", "int32", "int64":
		bits, _ := strconv.Atoi(strings.TrimPrefix(s.Type, "int"))
		if _, err := strconv.ParseInt(string(v), 10, bits); err != nil {
			return fmt.Errorf("%s: %s is not an %s", path, v, s.Type)
		}
	case "float", "double":
		var str string
		if json.Unmarshal(v, &str) == nil {
			if str != "NaN" && str != "Infinity" && str != "-Infinity" {
				return fmt.Errorf("%s: %s is not a %s", path, v, s.Type)
			}
			return nil
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || (s.Type == "float" && math.Abs(f) > math.MaxFloat32) {
			return fmt.Errorf("%s: %s is not a %s", path, v, s.Type)
		}
	case "boolean":
		if !bytes.Equal(v, []byte("true")) && !bytes.Equal(v, []byte("false")) {
			return fmt.Errorf("%s: %s is not a boolean", path, v)
		}
	case "string", "bytes":
		var str string
		if err := json.Unmarshal(v, &str); err != nil {
			return fmt.Errorf("%s: %s is not a string", path, v)
		}
		if s.Type == "bytes" {
			if _, err := base64.StdEncoding.DecodeString(str); err != nil {
				return fmt.Errorf("%s: %s is not base64", path, v)
			}
		}
	default:
		return fmt.Errorf("%s: unknown schema type %q", path, s.Type)
	}
	return nil
}
