package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Request is one node as the engine sends it. Config may hold secrets:
// never log it.
type Request struct {
	RunID   string
	NodeID  string
	Kind    string
	Plugin  string
	Attempt int // 1 for the first attempt
	// Config is the node's `with` mapping, decoded from ConfigJSON.
	Config map[string]any
	// ConfigJSON is the raw config, a JSON object.
	ConfigJSON []byte
	// Inputs are the outputs of the node's dependencies, by node id.
	Inputs map[string]map[string]string
	// DryRun says the call must change nothing.
	DryRun bool
	// WorkDir is the graph file's folder, the default working directory.
	WorkDir string
	// Drill says the run is a drill, an exercise on the real plan: restore
	// into the exercise environment, never into production.
	Drill bool
	// RestorePoint is the backup to restore from, chosen by the engine for
	// a node that declares restore_points (scanned clean, or picked by an
	// operator); nil otherwise.
	RestorePoint *RestorePoint
}

// RestorePoint is one backup of a node's data.
type RestorePoint struct {
	ID   string
	Time time.Time
	Path string // the point's folder
}

// ConfigError is a problem with one field of a node's `with` mapping.
type ConfigError struct {
	Field   string // "with.backup"; "with" for the whole mapping
	Problem string
}

// Error returns "with.FIELD: problem".
func (e *ConfigError) Error() string { return e.Field + ": " + e.Problem }

// Decode decodes the node's config into v, a pointer to a struct whose
// fields carry `json:"name"` tags; a `required:"true"` tag marks a key that
// must be present. Fields of type time.Duration accept Go duration strings
// ("90s", "5m"). Unknown keys, missing required keys and wrong types are
// errors naming the field; several problems are joined.
func (r *Request) Decode(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("decode config: want a pointer to a struct, got %T", v)
	}
	raw := r.ConfigJSON
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	var keys map[string]json.RawMessage
	if !emptyObject(raw) { // `with` left out (milestones): nothing to decode
		if err := json.Unmarshal(raw, &keys); err != nil {
			return &ConfigError{Field: "with", Problem: "not a mapping: " + err.Error()}
		}
	}
	fields := structFields(rv.Elem().Type())
	var errs []error
	var unknown []string
	for k := range keys {
		if !slices.ContainsFunc(fields, func(f structField) bool { return f.name == k }) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		errs = append(errs, &ConfigError{Field: "with." + k,
			Problem: fmt.Sprintf("unknown field (want %s)", strings.Join(fieldNames(fields), ", "))})
	}
	for _, f := range fields {
		msg, ok := keys[f.name]
		if !ok || string(bytes.TrimSpace(msg)) == "null" {
			if f.required {
				errs = append(errs, &ConfigError{Field: "with." + f.name, Problem: "required field missing"})
			}
			continue
		}
		dst := rv.Elem().FieldByIndex(f.index)
		if err := decodeValue(msg, dst); err != nil {
			errs = append(errs, &ConfigError{Field: "with." + f.name, Problem: err.Error()})
		}
	}
	return errors.Join(errs...)
}

var durationType = reflect.TypeOf(time.Duration(0))

// emptyObject tells whether raw is the JSON of an empty object, "{}", as
// the host sends a node without `with`.
func emptyObject(raw []byte) bool { return len(raw) == 2 && raw[0] == '{' && raw[1] == '}' }

// decodeValue decodes one JSON value into dst, with Go duration strings for
// time.Duration.
func decodeValue(msg json.RawMessage, dst reflect.Value) error {
	if dst.Type() == durationType {
		var s string
		if err := json.Unmarshal(msg, &s); err != nil {
			return fmt.Errorf("want a duration such as \"90s\" or \"5m\", got %s", jsonType(msg))
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration such as \"90s\" or \"5m\", got %q", s)
		}
		dst.SetInt(int64(d))
		return nil
	}
	p := reflect.New(dst.Type())
	if err := json.Unmarshal(msg, p.Interface()); err != nil {
		// The value is not quoted: a misplaced secret must not reach a message.
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("want %s, got %s", typeName(dst.Type()), te.Value)
		}
		return fmt.Errorf("want %s, got %s", typeName(dst.Type()), jsonType(msg))
	}
	dst.Set(p.Elem())
	return nil
}

// jsonType names the JSON type of a raw value ("string", "number" …).
func jsonType(msg json.RawMessage) string {
	b := bytes.TrimSpace(msg)
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

type structField struct {
	name        string
	index       []int
	required    bool
	description string
	typ         reflect.Type
}

// fieldCache holds structFields' answer by type: Decode runs on every call.
var fieldCache sync.Map // reflect.Type → []structField

func structFields(t reflect.Type) []structField {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]structField)
	}
	var out []structField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, structField{
			name: name, index: f.Index, typ: f.Type,
			required:    f.Tag.Get("required") == "true",
			description: f.Tag.Get("desc"),
		})
	}
	fieldCache.Store(t, out)
	return out
}

func fieldNames(fs []structField) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.name
	}
	return out
}

func typeName(t reflect.Type) string {
	if t == durationType {
		return "duration"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "int"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice:
		return "[]" + typeName(t.Elem())
	case reflect.Map:
		return "map[string]" + typeName(t.Elem())
	case reflect.Pointer:
		return typeName(t.Elem())
	}
	return t.String()
}

// FieldsOf documents the fields of config struct v (a struct or a pointer
// to one) from its tags: `json:"name"`, `required:"true"`, `desc:"…"`.
func FieldsOf(v any) []Field {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []Field
	for _, f := range structFields(t) {
		out = append(out, Field{Name: f.name, Type: typeName(f.typ), Required: f.required, Description: f.description})
	}
	return out
}

// validateFields checks config keys against declared fields: unknown keys
// and missing required keys. No declared fields: nothing is checked.
func validateFields(fields []Field, config map[string]any) []string {
	if len(fields) == 0 {
		return nil
	}
	var problems []string
	known := make(map[string]bool, len(fields))
	names := make([]string, len(fields))
	for i, f := range fields {
		known[f.Name] = true
		names[i] = f.Name
	}
	var unknown []string
	for k := range config {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		problems = append(problems, fmt.Sprintf("with.%s: unknown field (want %s)", k, strings.Join(names, ", ")))
	}
	for _, f := range fields {
		if v, ok := config[f.Name]; f.Required && (!ok || v == nil) {
			problems = append(problems, fmt.Sprintf("with.%s: required field missing", f.Name))
		}
	}
	return problems
}
