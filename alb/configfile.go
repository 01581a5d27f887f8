package alb

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// ConfigError is an error in a configuration file, naming the file, the
// line (0 when unknown) and the field.
type ConfigError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *ConfigError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

// LoadConfigFile reads a YAML (or JSON) configuration file strictly.
func LoadConfigFile(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading config: %w", err)
	}
	return ParseConfig(data, path)
}

var (
	reUnknownField = regexp.MustCompile(`unknown field "([^"]+)"`)
	reGoField      = regexp.MustCompile(`Go struct field [A-Za-z]+\.([A-Za-z0-9_.]+) of type`)
	reYAMLLine     = regexp.MustCompile(`line (\d+)`)
	reBadDuration  = regexp.MustCompile(`(?s)(?:duration must be a string.*, got|invalid duration) "?(.*?)"?(?::|$)`)
)

// durationKeys are the config keys that hold durations.
var durationKeys = []string{"idleTimeout", "connectTimeout", "interval", "timeout", "deregistrationDelay", "slowStart", "default"}

// ParseConfig parses a YAML configuration strictly: unknown fields, wrong
// types and out-of-range values are errors that name file, line and field.
// The result is validated; defaults are filled in by New.
func ParseConfig(data []byte, file string) (Config, error) {
	var c Config
	if len(bytes.TrimSpace(data)) == 0 {
		return Config{}, &ConfigError{File: file, Msg: "the file is empty; a load balancer needs at least one target group (see docs/alb.md)"}
	}
	// A value the defaults would replace (timeScale: 0) is a mistake, not
	// a request for the default.
	var explicit struct {
		TimeScale *float64 `json:"timeScale"`
	}
	if yaml.Unmarshal(data, &explicit) == nil && explicit.TimeScale != nil && *explicit.TimeScale <= 0 {
		return Config{}, &ConfigError{File: file, Field: "timeScale", Line: findKeyLine(data, []string{"timeScale"}),
			Msg: fmt.Sprintf("%v: want a number > 0 and <= 1000", *explicit.TimeScale)}
	}
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		msg := err.Error()
		ce := &ConfigError{File: file, Msg: cleanYAMLError(msg)}
		if m := reUnknownField.FindStringSubmatch(msg); m != nil {
			ce.Field = m[1]
			ce.Msg = "unknown field"
			if lastSegment(m[1]) == "checkIdleConnections" {
				ce.Msg = "unknown field (removed: the FIN check before reusing a pooled connection is now the default; reuseClosedIdleConnections: true selects the old pessimistic model)"
			}
			ce.Line = findKeyLine(data, []string{lastSegment(m[1])})
		} else if m := reGoField.FindStringSubmatch(msg); m != nil {
			ce.Field = m[1]
			ce.Line = findKeyLine(data, strings.Split(m[1], "."))
		} else if m := reBadDuration.FindStringSubmatch(msg); m != nil {
			// The JSON decoder does not say which field a custom type came
			// from; find the duration key holding that value.
			ce.Field, ce.Line = findValueLine(data, durationKeys, strings.TrimSpace(m[1]))
		} else if m := reYAMLLine.FindStringSubmatch(msg); m != nil {
			fmt.Sscan(m[1], &ce.Line)
		}
		return Config{}, ce
	}
	if _, err := c.withDefaults(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return Config{}, &ConfigError{File: file, Field: fe.Field, Msg: fe.Msg, Line: findKeyLine(data, fieldKeys(fe.Field))}
		}
		return Config{}, &ConfigError{File: file, Msg: err.Error()}
	}
	if len(c.TargetGroups) == 0 {
		return Config{}, &ConfigError{File: file, Field: "targetGroups", Msg: "no target group; a load balancer needs at least one (see docs/alb.md)"}
	}
	return c, nil
}

func cleanYAMLError(msg string) string {
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	msg = strings.TrimPrefix(msg, "error unmarshaling JSON: ")
	msg = strings.TrimPrefix(msg, "while decoding JSON: ")
	return msg
}

func lastSegment(field string) string {
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		return field[i+1:]
	}
	return field
}

// fieldKeys turns "targetGroups[1].healthCheck.interval" into the keys
// targetGroups, healthCheck, interval (indices dropped).
func fieldKeys(field string) []string {
	var keys []string
	for part := range strings.SplitSeq(field, ".") {
		if i := strings.IndexByte(part, '['); i >= 0 {
			part = part[:i]
		}
		if part != "" {
			keys = append(keys, part)
		}
	}
	return keys
}

// findKeyLine returns the 1-based line of the last key in keys, looking for
// the keys in order (each after the previous one), or 0 when not found. It
// is a best effort for error messages, not a YAML parser.
func findKeyLine(data []byte, keys []string) int {
	lines := strings.Split(string(data), "\n")
	start, found := 0, 0
	for _, k := range keys {
		re := regexp.MustCompile(`^\s*(-\s+)?"?` + regexp.QuoteMeta(k) + `"?\s*:`)
		hit := -1
		for i := start; i < len(lines); i++ {
			if re.MatchString(lines[i]) {
				hit = i
				break
			}
		}
		if hit < 0 {
			continue
		}
		start, found = hit, hit+1
	}
	return found
}

// findValueLine finds the first line "key: value" with key among keys (or
// any key when the value sits under perOperation) and returns key and line.
func findValueLine(data []byte, keys []string, value string) (string, int) {
	re := regexp.MustCompile(`^\s*(?:-\s+)?"?([A-Za-z]+)"?\s*:\s*["']?` + regexp.QuoteMeta(value) + `["']?\s*(?:#.*)?$`)
	inPerOp := false
	for i, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "perOperation") {
			inPerOp = true
		}
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if inPerOp || slices.Contains(keys, m[1]) {
			return m[1], i + 1
		}
	}
	return "", 0
}
