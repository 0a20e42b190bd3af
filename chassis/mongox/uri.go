package mongox

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// ReadPreferences are the values DB_READ_PREFERENCE accepts (MongoDB's read
// preference modes, spelled as in a connection string).
var ReadPreferences = []string{"primary", "primaryPreferred", "secondary", "secondaryPreferred", "nearest"}

// systemDatabases hold the server's own data. A connection string naming
// one in its path names the database the user authenticates against (its
// default authSource), never where the service keeps its collections.
var systemDatabases = []string{"admin", "local", "config"}

// secretOptions are connection-string options whose value is a secret (a
// key file's password, AWS session tokens in the auth properties).
var secretOptions = []string{"tlscertificatekeyfilepassword", "sslclientcertificatekeypassword", "authmechanismproperties"}

// redactedSecret replaces every secret in a connection string that is shown.
const redactedSecret = "xxxxx"

// Validate checks what Connect would use: the connection string when set
// (parsed by the driver), the read preference and the write concern, and
// that the variables and the connection string do not contradict each
// other. Its errors never contain the connection string's password; a
// *VarError names the variable at fault.
func (o Options) Validate() error {
	_, err := o.resolve()
	return err
}

// Check reports Validate's error, if any, to report with the variable it
// is about (a config.Source's Check).
func (o Options) Check(report func(variable string, err error)) {
	if err := o.Validate(); err != nil {
		variable := "DB_URI"
		var ve *VarError
		if errors.As(err, &ve) {
			variable = ve.Variable
		}
		report(variable, err)
	}
}

// CheckURIPassword reports DB_URI when the password it carries is one that
// isExample recognises (a value published in the repository's examples).
func (o Options) CheckURIPassword(isExample func(string) bool, report func(variable string, err error)) {
	if o.URI == "" {
		return
	}
	if cs, err := parseURI(o.URI); err == nil && cs.PasswordSet && isExample(cs.Password) {
		report("DB_URI", errors.New("its password is still the example value from .env.example; "+
			"set a real secret (or ALLOW_EXAMPLE_SECRETS=true for local use only)"))
	}
}

// VarError is a problem with one configuration variable.
type VarError struct {
	Variable string
	Err      error
}

func (e *VarError) Error() string { return e.Err.Error() }
func (e *VarError) Unwrap() error { return e.Err }

func varErr(variable string, err error) error { return &VarError{Variable: variable, Err: err} }

// resolved is Options merged with what the connection string sets.
type resolved struct {
	cs       *connstring.ConnString // nil without a connection string
	uri      string                 // what the driver is given
	database string
	readPref *readpref.ReadPref // the read preference of reads that may be stale
	write    *writeconcern.WriteConcern
}

func (o Options) resolve() (resolved, error) {
	r := resolved{uri: o.URI, database: o.Name}
	if r.uri == "" {
		r.uri = o.HostURI()
	} else {
		cs, err := parseURI(o.URI)
		if err != nil {
			return r, err
		}
		r.cs = cs
		if cs.Database != "" && !slices.Contains(systemDatabases, cs.Database) {
			r.database = cs.Database
		}
	}
	if r.database == "" {
		return r, varErr("DB_NAME", errors.New("no database: set DB_NAME or name one in DB_URI's path"))
	}

	mode, rpVar := o.ReadPreference, "DB_READ_PREFERENCE"
	if r.cs != nil && r.cs.ReadPreference != "" {
		if mode != "" && !strings.EqualFold(mode, r.cs.ReadPreference) {
			return r, fmt.Errorf("DB_READ_PREFERENCE=%s contradicts readPreference=%s in DB_URI; set one of them", mode, r.cs.ReadPreference)
		}
		mode, rpVar = r.cs.ReadPreference, "DB_URI"
	}
	if mode == "" {
		mode = "primary"
	}
	m, err := readpref.ModeFromString(mode)
	if err != nil || !slices.ContainsFunc(ReadPreferences, func(s string) bool { return strings.EqualFold(s, mode) }) {
		return r, varErr(rpVar, fmt.Errorf("read preference %q: must be one of %s", mode, strings.Join(ReadPreferences, ", ")))
	}
	var rpOpts []readpref.Option
	if r.cs != nil {
		// Tags and maxStalenessSeconds from the connection string narrow
		// which secondaries may answer.
		if r.cs.MaxStalenessSet {
			rpOpts = append(rpOpts, readpref.WithMaxStaleness(r.cs.MaxStaleness))
		}
		if len(rpOpts) > 0 || len(r.cs.ReadPreferenceTagSets) > 0 {
			rpVar = "DB_URI"
		}
		for _, set := range r.cs.ReadPreferenceTagSets {
			tags := make([]string, 0, 2*len(set))
			for k, v := range set {
				tags = append(tags, k, v)
			}
			rpOpts = append(rpOpts, readpref.WithTags(tags...))
		}
	}
	if r.readPref, err = readpref.New(m, rpOpts...); err != nil {
		return r, varErr(rpVar, fmt.Errorf("read preference %s: %w", mode, err))
	}

	w, wVar := o.WriteConcern, "DB_WRITE_CONCERN"
	if r.cs != nil && (r.cs.WNumberSet || r.cs.WString != "") {
		fromURI := r.cs.WString
		if r.cs.WNumberSet {
			fromURI = strconv.Itoa(r.cs.WNumber)
		}
		if w != "" && w != fromURI {
			return r, fmt.Errorf("DB_WRITE_CONCERN=%s contradicts w=%s in DB_URI; set one of them", w, fromURI)
		}
		w, wVar = fromURI, "DB_URI"
	}
	if r.write, err = parseWriteConcern(w); err != nil {
		return r, varErr(wVar, err)
	}
	return r, nil
}

// parseWriteConcern reads "majority" or a number of members ("" is the
// driver's default). w=0 is refused: unacknowledged writes would hide the
// duplicate-key and version-check answers the services rely on.
func parseWriteConcern(w string) (*writeconcern.WriteConcern, error) {
	switch w {
	case "":
		return nil, nil
	case writeconcern.WCMajority:
		return writeconcern.Majority(), nil
	}
	n, err := strconv.Atoi(w)
	if err != nil || n < 1 || n > 50 {
		return nil, fmt.Errorf("write concern %q: must be majority or a number of members from 1 to 50 "+
			"(0, unacknowledged, would hide duplicate keys and lost version checks)", w)
	}
	return &writeconcern.WriteConcern{W: n}, nil
}

// parseURI parses and validates a connection string with the driver's
// parser. A mongodb+srv string is checked without resolving its DNS
// records (that happens when connecting): its host must be one name
// without a port, and its options are validated as those of the plain
// form. Errors are scrubbed of every secret the string holds.
func parseURI(uri string) (*connstring.ConnString, error) {
	check := uri
	srv := strings.HasPrefix(uri, connstring.SchemeMongoDBSRV+"://")
	if srv {
		check = connstring.SchemeMongoDB + "://" + strings.TrimPrefix(uri, connstring.SchemeMongoDBSRV+"://")
		check = dropOptions(check, "srvmaxhosts", "srvservicename")
	}
	cs, err := connstring.ParseAndValidate(check)
	if err != nil {
		if strings.Contains(err.Error(), "invalid URL escape") {
			// The parser quotes the bad %-escape, which may be a piece of
			// the password that scrub (whole secrets only) cannot find.
			return nil, errors.New("not a valid MongoDB connection string: an invalid %-escape (in the user name, password or an option, write @ : / ? # % as %40 %3A %2F %3F %23 %25)")
		}
		return nil, fmt.Errorf("not a valid MongoDB connection string: %s", scrub(err.Error(), uri))
	}
	if srv {
		if len(cs.Hosts) != 1 || strings.Contains(cs.Hosts[0], ":") {
			return nil, errors.New("not a valid MongoDB connection string: mongodb+srv takes exactly one host name, without a port")
		}
		if cs.DirectConnectionSet && cs.DirectConnection {
			return nil, errors.New("not a valid MongoDB connection string: a direct connection cannot be made if an SRV URI is used")
		}
		cs.Scheme = connstring.SchemeMongoDBSRV
		cs.Original = uri
	}
	return cs, nil
}

// dropOptions removes the named query options (case-insensitive).
func dropOptions(uri string, names ...string) string {
	base, query, ok := strings.Cut(uri, "?")
	if !ok {
		return uri
	}
	var kept []string
	for _, kv := range strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' }) {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, strings.ToLower(k)) {
			kept = append(kept, kv)
		}
	}
	if len(kept) == 0 {
		return base
	}
	return base + "?" + strings.Join(kept, "&")
}

// Redact returns the connection string with its password and every secret
// option value replaced by xxxxx, for logs. A string the driver's parser
// would refuse is not shown at all (its secrets cannot be located safely).
func Redact(uri string) string {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return "(invalid connection string, not shown)"
	}
	// The driver's parser ends the user info at the first "@"; a string
	// whose password holds an unescaped "@", "/" or ":" is refused by it,
	// and by Validate before anything is logged.
	if at := strings.Index(rest, "@"); at >= 0 {
		user, _, hasPassword := strings.Cut(rest[:at], ":")
		if hasPassword {
			rest = user + ":" + redactedSecret + rest[at:]
		}
	}
	base, query, hasQuery := strings.Cut(rest, "?")
	if !hasQuery {
		return scheme + "://" + base
	}
	parts := strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' })
	for i, kv := range parts {
		if k, _, ok := strings.Cut(kv, "="); ok && slices.Contains(secretOptions, strings.ToLower(k)) {
			parts[i] = k + "=" + redactedSecret
		}
	}
	return scheme + "://" + base + "?" + strings.Join(parts, "&")
}

// secrets lists the secret parts of a connection string as written and
// percent-decoded, longest first, for scrub.
func secrets(uri string) []string {
	var out []string
	add := func(s string) {
		if s == "" {
			return
		}
		out = append(out, s)
		if u, err := url.PathUnescape(s); err == nil && u != s {
			out = append(out, u)
		}
		if u, err := url.QueryUnescape(s); err == nil && u != s {
			out = append(out, u)
		}
	}
	_, rest, _ := strings.Cut(uri, "://")
	// Every "@" may end the user info of a malformed string: treat
	// everything before the last one as possibly secret, and each piece
	// after a ":" in it.
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		info := rest[:at]
		if _, pw, ok := strings.Cut(info, ":"); ok {
			add(pw)
			if i := strings.Index(pw, "@"); i >= 0 {
				add(pw[:i])
			}
		}
	}
	if _, query, ok := strings.Cut(rest, "?"); ok {
		for _, kv := range strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' }) {
			if k, v, ok := strings.Cut(kv, "="); ok && slices.Contains(secretOptions, strings.ToLower(k)) {
				add(v)
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// scrub removes every secret of uri from text (a driver error message).
func scrub(text, uri string) string {
	for _, s := range secrets(uri) {
		text = strings.ReplaceAll(text, s, redactedSecret)
	}
	return text
}

// Redacted is the connection string Connect uses, safe to log.
func (o Options) Redacted() string {
	if o.URI != "" {
		return Redact(o.URI)
	}
	return Redact(o.HostURI())
}
