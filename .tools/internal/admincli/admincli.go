// Package admincli is the operators' command line (go run ./.tools/admin):
// it signs in through the gateway with an administrator's email and
// password, calls the admin API (/auth/admin/...) and prints the answer as
// a table (or JSON with -json). It holds the whole program so that tests
// run it against a real platform; .tools/admin only calls Run.
package admincli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Defaults: the local platform's seeded credentials (the .env.example
// values), so that the commands work against `go run ./.tools/devstack`
// without flags. A test keeps them equal to the platform's.
const (
	DefaultGateway  = "http://127.0.0.1:8000"
	DefaultAPIKey   = "1D3F2DD1A5DE725DD4DF1D82BBB37"
	DefaultEmail    = "admin@unusualcode.org"
	DefaultPassword = "changeit"
)

// Environment variables read when the matching flag is not given.
const (
	EnvGateway  = "ADMIN_GATEWAY"
	EnvAPIKey   = "ADMIN_API_KEY"
	EnvEmail    = "ADMIN_EMAIL"
	EnvPassword = "ADMIN_PASSWORD"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1 // the platform refused or failed, or could not be reached
	ExitUsage = 2 // the command line is wrong
)

const usage = `Usage: go run ./.tools/admin [global flags] <command> [arguments and flags]

Commands (USER is a user id or email):
  apikeys list [-limit N]                 every API key (never its value)
  apikeys create [-comment TEXT]...       a new API key; its value is shown once
  apikeys revoke KEY_ID                   disable a key (refused by the gateway within its cache time)
  users show USER                         email, roles and status
  users roles grant USER ROLE             ROLE: LEARNER, AUTHOR, EDITOR or ADMIN
  users roles revoke USER ROLE
  users disable USER                      disable and end every session at once
  users enable USER
  sessions list USER                      the user's sessions (keystores), newest first
  sessions end USER SESSION_ID            end one session
  sessions end USER -all                  end every session

Global flags (or environment variables):
  -gateway URL       ADMIN_GATEWAY   (default ` + DefaultGateway + `)
  -api-key KEY       ADMIN_API_KEY   (default: the local platform's seeded key)
  -email EMAIL       ADMIN_EMAIL     (default ` + DefaultEmail + `)
  -password SECRET   ADMIN_PASSWORD  (default: the local platform's seeded password)
  -json              print the API's data as JSON instead of a table
  -timeout D         per-run time limit (default 30s)

Exit status: 0 on success, 1 when the platform refuses or fails, 2 on a usage error.
`

// usageError is a wrong command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// Env is what a run uses of its surroundings.
type Env struct {
	// Getenv reads the environment (nil: os.Getenv).
	Getenv         func(string) string
	Stdout, Stderr io.Writer
	// Transport sends the HTTP requests (nil: http.DefaultTransport).
	Transport http.RoundTripper
}

// Run executes one command line (without the program name) and returns the
// exit status.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	stdout, stderr := env.Stdout, env.Stderr
	err := run(ctx, args, env)
	var ue *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "admin: %s\n\n%s", ue.msg, usage)
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "admin: %v\n", err)
		return ExitError
	}
}

type globals struct {
	gateway, apiKey, email, password string
	json                             bool
	timeout                          time.Duration
}

func run(ctx context.Context, args []string, env Env) error {
	getenv, stdout := env.Getenv, env.Stdout
	g := globals{}
	fs := newFlagSet("admin")
	or := func(env, def string) string {
		if v := getenv(env); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&g.gateway, "gateway", or(EnvGateway, DefaultGateway), "")
	fs.StringVar(&g.apiKey, "api-key", or(EnvAPIKey, DefaultAPIKey), "")
	fs.StringVar(&g.email, "email", or(EnvEmail, DefaultEmail), "")
	fs.StringVar(&g.password, "password", or(EnvPassword, DefaultPassword), "")
	fs.BoolVar(&g.json, "json", false, "")
	fs.DurationVar(&g.timeout, "timeout", 30*time.Second, "")
	if err := parse(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usageErrorf("no command")
	}
	cmd, err := command(rest)
	if err != nil {
		return err
	}
	// Every argument is checked before anything is sent.
	if err := cmd.prepare(); err != nil {
		return err
	}
	base, err := url.Parse(g.gateway)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return usageErrorf("-gateway %q is not an http(s) URL", g.gateway)
	}
	if g.timeout <= 0 {
		return usageErrorf("-timeout must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	c := &client{base: strings.TrimRight(g.gateway, "/"), apiKey: g.apiKey, http: &http.Client{Timeout: g.timeout, Transport: env.Transport}}
	if err := c.signIn(ctx, g.email, g.password); err != nil {
		return err
	}
	defer c.signOut()
	data, err := cmd.run(ctx, c)
	if err != nil {
		return err
	}
	if g.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(data.value)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	data.print(tw)
	return tw.Flush()
}

// newFlagSet reports errors to the caller instead of printing and exiting.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErrorf("%v", err)
	}
	return nil
}

// parseInterleaved parses fs's flags wherever they stand among the
// positional arguments (`sessions end USER -all` and `sessions end -all
// USER` alike) and returns the positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// output is a command's result: the data for -json and its table.
type output struct {
	value any
	print func(w io.Writer)
}

// cmd is one command: prepare checks its arguments, run calls the API.
type cmd struct {
	prepare func() error
	run     func(ctx context.Context, c *client) (output, error)
}

func command(args []string) (cmd, error) {
	name := args[0]
	if len(args) > 1 && (name == "apikeys" || name == "users" || name == "sessions") {
		name += " " + args[1]
		args = args[1:]
		if name == "users roles" && len(args) > 1 {
			name += " " + args[1]
			args = args[1:]
		}
	}
	build, ok := commands[name]
	if !ok {
		return cmd{}, usageErrorf("unknown command %q", strings.Join(strings.Fields(name), " "))
	}
	return build(args[1:]), nil
}

// commands build each command from its arguments.
var commands = map[string]func(args []string) cmd{
	"apikeys list":       apikeysList,
	"apikeys create":     apikeysCreate,
	"apikeys revoke":     apikeysRevoke,
	"users show":         usersShow,
	"users roles grant":  func(args []string) cmd { return usersRole(args, http.MethodPost) },
	"users roles revoke": func(args []string) cmd { return usersRole(args, http.MethodDelete) },
	"users disable":      usersDisable,
	"users enable":       usersEnable,
	"sessions list":      sessionsList,
	"sessions end":       sessionsEnd,
}

// APIKey is a key as the admin API lists it.
type APIKey struct {
	ID        string    `json:"_id"`
	Key       string    `json:"key,omitempty"`
	Suffix    string    `json:"suffix,omitempty"`
	Comments  []string  `json:"comments"`
	Status    bool      `json:"status"`
	CreatedAt time.Time `json:"createdAt"`
}

func printKeys(w io.Writer, keys []APIKey) {
	fmt.Fprintln(w, "ID\tSTATUS\tSUFFIX\tCREATED\tCOMMENTS")
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.ID, keyStatus(k.Status), orDash(k.Suffix),
			k.CreatedAt.UTC().Format(time.RFC3339), orDash(strings.Join(k.Comments, "; ")))
	}
}

func keyStatus(active bool) string {
	if active {
		return "active"
	}
	return "revoked"
}

func userStatus(enabled bool) string {
	if enabled {
		return "enabled"
	}
	return "disabled"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// positional returns exactly n positional arguments of fs, or a usage error
// naming them.
func positional(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != len(names) {
		return nil, usageErrorf("%s needs %s", fs.Name(), strings.Join(names, " "))
	}
	return pos, nil
}

func apikeysList(args []string) cmd {
	fs := newFlagSet("apikeys list")
	limit := fs.Int("limit", 0, "")
	return cmd{
		prepare: func() error {
			if _, err := positional(fs, args); err != nil {
				return err
			}
			if *limit < 0 {
				return usageErrorf("-limit must be positive")
			}
			return nil
		},
		run: func(ctx context.Context, c *client) (output, error) {
			const page = 1000
			keys := []APIKey{}
			after := ""
			for {
				var batch []APIKey
				path := "/auth/admin/apikeys?limit=" + strconv.Itoa(page)
				if after != "" {
					path += "&after=" + after
				}
				if _, err := c.call(ctx, http.MethodGet, path, nil, &batch); err != nil {
					return output{}, err
				}
				keys = append(keys, batch...)
				if len(batch) < page || (*limit > 0 && len(keys) >= *limit) {
					break
				}
				after = batch[len(batch)-1].ID
			}
			if *limit > 0 && len(keys) > *limit {
				keys = keys[:*limit]
			}
			return output{value: keys, print: func(w io.Writer) { printKeys(w, keys) }}, nil
		},
	}
}

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ", ") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func apikeysCreate(args []string) cmd {
	fs := newFlagSet("apikeys create")
	var comments repeated
	fs.Var(&comments, "comment", "")
	return cmd{
		prepare: func() error { _, err := positional(fs, args); return err },
		run: func(ctx context.Context, c *client) (output, error) {
			var k APIKey
			body := map[string][]string{"comments": comments}
			if len(comments) == 0 {
				body = map[string][]string{}
			}
			if _, err := c.call(ctx, http.MethodPost, "/auth/admin/apikeys", body, &k); err != nil {
				return output{}, err
			}
			return output{value: k, print: func(w io.Writer) {
				fmt.Fprintf(w, "API key created: %s\n", k.ID)
				fmt.Fprintf(w, "Key (shown once; store it now):\n%s\n", k.Key)
			}}, nil
		},
	}
}

func apikeysRevoke(args []string) cmd {
	fs := newFlagSet("apikeys revoke")
	var pos []string
	return cmd{
		prepare: func() (err error) {
			if pos, err = positional(fs, args, "KEY_ID"); err != nil {
				return err
			}
			if !isObjectID(pos[0]) {
				return usageErrorf("KEY_ID %q is not an id (24 hexadecimal characters)", pos[0])
			}
			return nil
		},
		run: func(ctx context.Context, c *client) (output, error) {
			var k APIKey
			if _, err := c.call(ctx, http.MethodDelete, "/auth/admin/apikeys/"+pos[0], nil, &k); err != nil {
				return output{}, err
			}
			return output{value: k, print: func(w io.Writer) {
				fmt.Fprintf(w, "API key %s revoked (the gateway refuses it once its cache entry expires).\n", k.ID)
			}}, nil
		},
	}
}

func printUser(w io.Writer, u User) {
	fmt.Fprintln(w, "ID\tEMAIL\tNAME\tSTATUS\tROLES")
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, u.Name, userStatus(u.Status), u.roleList())
}

// userCommand is a command on one user (USER, then more arguments).
func userCommand(name string, args []string, more []string, do func(ctx context.Context, c *client, id string, rest []string) (output, error)) cmd {
	fs := newFlagSet(name)
	var pos []string
	return cmd{
		prepare: func() (err error) {
			pos, err = positional(fs, args, append([]string{"USER"}, more...)...)
			return err
		},
		run: func(ctx context.Context, c *client) (output, error) {
			id, err := c.resolveUser(ctx, pos[0])
			if err != nil {
				return output{}, err
			}
			return do(ctx, c, id, pos[1:])
		},
	}
}

func usersShow(args []string) cmd {
	return userCommand("users show", args, nil, func(ctx context.Context, c *client, id string, _ []string) (output, error) {
		var u User
		if _, err := c.call(ctx, http.MethodGet, "/auth/admin/users/"+id, nil, &u); err != nil {
			return output{}, err
		}
		return output{value: u, print: func(w io.Writer) { printUser(w, u) }}, nil
	})
}

func usersRole(args []string, method string) cmd {
	name, verb := "users roles grant", "granted"
	if method == http.MethodDelete {
		name, verb = "users roles revoke", "revoked"
	}
	return userCommand(name, args, []string{"ROLE"}, func(ctx context.Context, c *client, id string, rest []string) (output, error) {
		role := strings.ToUpper(rest[0])
		var u User
		if _, err := c.call(ctx, method, "/auth/admin/users/"+id+"/roles/"+url.PathEscape(role), nil, &u); err != nil {
			return output{}, err
		}
		return output{value: u, print: func(w io.Writer) {
			fmt.Fprintf(w, "Role %s %s.\n", role, verb)
			printUser(w, u)
		}}, nil
	})
}

func usersDisable(args []string) cmd {
	return userCommand("users disable", args, nil, func(ctx context.Context, c *client, id string, _ []string) (output, error) {
		var res struct {
			User          User `json:"user"`
			SessionsEnded int  `json:"sessionsEnded"`
		}
		if _, err := c.call(ctx, http.MethodPost, "/auth/admin/users/"+id+"/disable", nil, &res); err != nil {
			return output{}, err
		}
		return output{value: res, print: func(w io.Writer) {
			fmt.Fprintf(w, "User disabled; %d session(s) ended.\n", res.SessionsEnded)
			printUser(w, res.User)
		}}, nil
	})
}

func usersEnable(args []string) cmd {
	return userCommand("users enable", args, nil, func(ctx context.Context, c *client, id string, _ []string) (output, error) {
		var u User
		if _, err := c.call(ctx, http.MethodPost, "/auth/admin/users/"+id+"/enable", nil, &u); err != nil {
			return output{}, err
		}
		return output{value: u, print: func(w io.Writer) {
			fmt.Fprintln(w, "User enabled.")
			printUser(w, u)
		}}, nil
	})
}

// Session is one session as the admin API lists it.
type Session struct {
	ID        string    `json:"_id"`
	Family    string    `json:"family"`
	CreatedAt time.Time `json:"createdAt"`
}

func sessionsList(args []string) cmd {
	return userCommand("sessions list", args, nil, func(ctx context.Context, c *client, id string, _ []string) (output, error) {
		list := []Session{}
		if _, err := c.call(ctx, http.MethodGet, "/auth/admin/users/"+id+"/sessions", nil, &list); err != nil {
			return output{}, err
		}
		return output{value: list, print: func(w io.Writer) {
			fmt.Fprintln(w, "SESSION\tCREATED\tFAMILY")
			for _, s := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\n", s.ID, s.CreatedAt.UTC().Format(time.RFC3339), s.Family)
			}
		}}, nil
	})
}

func sessionsEnd(args []string) cmd {
	fs := newFlagSet("sessions end")
	all := fs.Bool("all", false, "")
	var pos []string
	return cmd{
		prepare: func() (err error) {
			if pos, err = parseInterleaved(fs, args); err != nil {
				return err
			}
			switch {
			case *all && len(pos) == 1:
			case !*all && len(pos) == 2 && isObjectID(pos[1]):
			case !*all && len(pos) == 2:
				return usageErrorf("SESSION_ID %q is not an id (24 hexadecimal characters)", pos[1])
			default:
				return usageErrorf("sessions end needs USER SESSION_ID, or USER -all")
			}
			return nil
		},
		run: func(ctx context.Context, c *client) (output, error) {
			id, err := c.resolveUser(ctx, pos[0])
			if err != nil {
				return output{}, err
			}
			if *all {
				var res struct {
					Ended int `json:"ended"`
				}
				if _, err := c.call(ctx, http.MethodDelete, "/auth/admin/users/"+id+"/sessions", nil, &res); err != nil {
					return output{}, err
				}
				return output{value: res, print: func(w io.Writer) { fmt.Fprintf(w, "%d session(s) ended.\n", res.Ended) }}, nil
			}
			msg, err := c.call(ctx, http.MethodDelete, "/auth/admin/users/"+id+"/sessions/"+strings.ToLower(pos[1]), nil, nil)
			if err != nil {
				return output{}, err
			}
			return output{value: map[string]string{"message": msg}, print: func(w io.Writer) {
				fmt.Fprintf(w, "Session %s ended.\n", pos[1])
			}}, nil
		},
	}
}
