// Package config reads service configuration from the process environment and
// an optional dotenv file. The environment always wins over the file, every
// variable has a default in code, and a value that is present but invalid is
// reported with one clear line naming the variable, so a service refuses to
// start instead of running with a zero value.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
)

// Source resolves variables: first the process environment, then the dotenv
// file's values. It collects every invalid value so that start-up reports all
// of them at once.
type Source struct {
	file   map[string]string
	lookup func(string) (string, bool)
	errs   []error
}

// Load reads the dotenv file at path (a missing file is fine: defaults and the
// environment still apply) and returns a Source backed by the real environment.
func Load(path string) (*Source, error) {
	file := map[string]string{}
	if path != "" {
		parsed, err := ParseDotenvFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if parsed != nil {
			file = parsed
		}
	}
	return &Source{file: file, lookup: os.LookupEnv}, nil
}

// FromMap builds a Source from fixed values only (tests, embedded replicas):
// the process environment is not consulted, so two replicas in one process can
// have different settings.
func FromMap(values map[string]string) *Source {
	copied := make(map[string]string, len(values))
	for k, v := range values {
		copied[k] = v
	}
	return &Source{file: copied, lookup: func(string) (string, bool) { return "", false }}
}

// ParseDotenvFile reads a dotenv file with github.com/joho/godotenv, so it
// is read as other dotenv tools read it: `#` comment lines and ` #` trailing
// comments on unquoted values, `export ` prefixes, single quotes taken
// literally, double quotes with \n escapes and ${VAR} references to earlier
// variables of the same file, and quoted values spanning several lines. A
// malformed file gives one line naming the file and the line, never the
// values (they may be secrets).
func ParseDotenvFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	values, err := parseDotenv(data)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: %s", path, dotenvErrorLine(data), dotenvErrorText(err))
	}
	return values, nil
}

// parseDotenv is godotenv's parser plus one rule it lacks: a last line
// without "=" is an error, not a value for the empty name.
func parseDotenv(data []byte) (map[string]string, error) {
	values, err := godotenv.UnmarshalBytes(data)
	if err != nil {
		return nil, err
	}
	if _, ok := values[""]; ok {
		return nil, errors.New("expected KEY=VALUE")
	}
	return values, nil
}

// dotenvErrorLine finds the line of a parse error, which godotenv does not
// report: it is the line after the longest run of whole lines that parses.
// (A shorter prefix may fail only because it cuts a multi-line value.)
func dotenvErrorLine(data []byte) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	good, end := 0, 0
	for i, l := range lines {
		end += len(l)
		if _, err := parseDotenv(data[:end]); err == nil {
			good = i + 1
		}
	}
	return good + 1
}

// dotenvErrorText keeps godotenv's description of the error and drops the
// file text it quotes after it.
func dotenvErrorText(err error) string {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "unterminated quoted value"):
		return "unterminated quoted value"
	case strings.HasPrefix(msg, `unexpected character "\n"`):
		return "expected KEY=VALUE" // the line ended before any "="
	}
	msg, _, _ = strings.Cut(msg, " near ")
	return msg
}

func (s *Source) raw(key string) (string, bool) {
	if v, ok := s.lookup(key); ok {
		return v, true
	}
	v, ok := s.file[key]
	return v, ok
}

func (s *Source) fail(key, value, want string) {
	s.errs = append(s.errs, fmt.Errorf("invalid configuration: %s=%q: %s", key, value, want))
}

// String returns the value, or def when the variable is unset or empty.
func (s *Source) String(key, def string) string {
	if v, ok := s.raw(key); ok && v != "" {
		return v
	}
	return def
}

// Int returns an integer within [min, max].
func (s *Source) Int(key string, def, min, max int) int {
	v, ok := s.raw(key)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		s.fail(key, v, fmt.Sprintf("must be an integer from %d to %d", min, max))
		return def
	}
	return n
}

// Float returns a number within [min, max].
func (s *Source) Float(key string, def, min, max float64) float64 {
	v, ok := s.raw(key)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < min || n > max {
		s.fail(key, v, fmt.Sprintf("must be a number from %g to %g", min, max))
		return def
	}
	return n
}

// Bool accepts true/false/1/0/yes/no.
func (s *Source) Bool(key string, def bool) bool {
	v, ok := s.raw(key)
	if !ok || v == "" {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	s.fail(key, v, "must be true or false")
	return def
}

// Duration accepts Go durations ("2s", "150ms"); a bare integer is read in
// unit, so `DB_QUERY_TIMEOUT_SEC=60` style variables keep working.
func (s *Source) Duration(key string, def time.Duration, unit time.Duration, min, max time.Duration) time.Duration {
	v, ok := s.raw(key)
	if !ok || v == "" {
		return def
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(n) * unit
	} else if parsed, err := time.ParseDuration(v); err == nil {
		d = parsed
	} else {
		s.fail(key, v, "must be a duration such as 2s or 500ms")
		return def
	}
	if d < min || d > max {
		s.fail(key, v, fmt.Sprintf("must be between %s and %s", min, max))
		return def
	}
	return d
}

// OneOf returns the value when it is one of allowed.
func (s *Source) OneOf(key, def string, allowed ...string) string {
	v, ok := s.raw(key)
	if !ok || v == "" {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	s.fail(key, v, "must be one of "+strings.Join(allowed, ", "))
	return def
}

// List splits a comma-separated value, dropping empty items.
func (s *Source) List(key string, def []string) []string {
	v, ok := s.raw(key)
	if !ok || strings.TrimSpace(v) == "" {
		return def
	}
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Check records err, when not nil, as the one line about key: for values a
// caller validates itself (a server list, a file that must be readable).
// The value is not repeated, since it may carry a password; err should say
// what is wrong without it.
func (s *Source) Check(key string, err error) {
	if err != nil {
		s.errs = append(s.errs, fmt.Errorf("invalid configuration: %s: %w", key, err))
	}
}

// Err reports every invalid value seen so far, one per line.
func (s *Source) Err() error { return errors.Join(s.errs...) }

// exampleSecrets are the secret values shipped in the repository's
// .env.example files. They are public, so a release deployment that still
// uses one is open to anyone who has read the repository.
var exampleSecrets = map[string]bool{
	"changeit":                      true,
	"changeit-auth":                 true,
	"changeit-blog":                 true,
	"1D3F2DD1A5DE725DD4DF1D82BBB37": true,
}

// IsExampleSecret reports whether value is one of the example secrets
// published in the repository's .env.example files.
func IsExampleSecret(value string) bool { return exampleSecrets[value] }

// RejectExampleSecrets records one error per variable among keys whose value
// is still an example secret. The value itself is not repeated in the error.
func (s *Source) RejectExampleSecrets(keys ...string) {
	for _, key := range keys {
		if v, ok := s.raw(key); ok && IsExampleSecret(v) {
			s.errs = append(s.errs, fmt.Errorf(
				"invalid configuration: %s: still the example value from .env.example; set a real secret (or ALLOW_EXAMPLE_SECRETS=true for local use only)", key))
		}
	}
}
