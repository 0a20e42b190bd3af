package natsx

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"

	"blogplatform/chassis/natsx/inbox"
)

// TLSOptions are the client's TLS files. Any of them turns TLS on for every
// server of the list (nats.go has one TLS setting per connection); a tls://
// server turns it on too, verified against the system roots.
type TLSOptions struct {
	// CAFile is a PEM bundle of the roots that sign the servers'
	// certificates (NATS_TLS_CA); empty means the system roots.
	CAFile string
	// CertFile and KeyFile are the client's own certificate and key, for
	// servers that verify clients (NATS_TLS_CERT, NATS_TLS_KEY): both or
	// neither.
	CertFile, KeyFile string
	// ServerName overrides the name the servers' certificates are checked
	// against (NATS_TLS_SERVER_NAME); empty means each URL's host.
	ServerName string
}

// enabled reports whether any TLS setting is given.
func (t TLSOptions) enabled() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != ""
}

// options are nats.go's options for t. nats.go reads the files again at
// every (re)connect, so a certificate renewed on disk is picked up by the
// next reconnect without a restart.
func (t TLSOptions) options() []nats.Option {
	if !t.enabled() {
		return nil
	}
	// First, so the file options below fill this configuration instead of
	// making their own.
	opts := []nats.Option{nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName})}
	if t.CAFile != "" {
		opts = append(opts, nats.RootCAs(t.CAFile))
	}
	if t.CertFile != "" || t.KeyFile != "" {
		opts = append(opts, nats.ClientCert(t.CertFile, t.KeyFile))
	}
	return opts
}

// ParseServers splits NATS_URL's comma-separated list and checks every
// entry: a nats:// or tls:// URL with a host and a port (nats.go would
// otherwise quietly guess a scheme or port 4222). An error names the entry by
// position and never repeats a password written into a URL.
func ParseServers(list string) ([]string, error) {
	var servers []string
	for i, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if err := checkServer(entry); err != nil {
			return nil, fmt.Errorf("server %d (%s): %w", i+1, redactURL(entry), err)
		}
		servers = append(servers, entry)
	}
	if len(servers) == 0 {
		return nil, errors.New("no server: want nats://host:port, comma-separated for several")
	}
	return servers, nil
}

func checkServer(entry string) error {
	u, err := url.Parse(entry)
	if err != nil {
		return errors.New("not a URL: want nats://host:port or tls://host:port")
	}
	if u.Scheme != "nats" && u.Scheme != "tls" {
		return errors.New("scheme must be nats:// or tls://")
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("want only nats://host:port (no path or query)")
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return errors.New("want host:port after the scheme")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("port must be a number from 1 to 65535")
	}
	return nil
}

// redactURL hides a user:password@ part, even in an entry that does not
// parse.
func redactURL(entry string) string {
	scheme, rest, ok := strings.Cut(entry, "://")
	if !ok {
		scheme, rest = "", entry
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = "***@" + rest[at+1:]
	}
	if ok {
		return scheme + "://" + rest
	}
	return rest
}

// inboxPrefix is the prefix of the connection's reply subjects ("" keeps
// nats.go's shared "_INBOX"). A restricted NATS user may subscribe to its
// own inbox only, so the prefix must be the one its permissions name:
//   - InboxPrefix, when set, wins: for permissions written another way;
//   - with User, "_INBOX_<user>", the rule the platform's server
//     configurations follow for password users (package inbox);
//   - with a credentials file, "_INBOX_<service name>": the identity in a
//     JWT is an opaque public key, unknown here and useless in a subject,
//     while the service name is what an operator issuing one JWT per
//     service knows, so the same permission template ("_INBOX_auth.>" for
//     the auth service's user) fits password users and JWT users alike.
func (o ConnOptions) inboxPrefix() (prefix, key string, err error) {
	switch {
	case o.InboxPrefix != "":
		return o.InboxPrefix, "NATS_INBOX_PREFIX", checkInboxPrefix(o.InboxPrefix)
	case o.User != "":
		return inbox.Prefix(o.User), "NATS_USER", inbox.CheckUser(o.User)
	case o.CredsFile != "":
		if err := inbox.CheckUser(o.Name); err != nil {
			return "", "NATS_SERVICE_NAME", fmt.Errorf("service name %q cannot name the inbox prefix of a credentials-file user (set NATS_INBOX_PREFIX)", o.Name)
		}
		return inbox.Prefix(o.Name), "NATS_SERVICE_NAME", nil
	}
	return "", "", nil
}

// checkInboxPrefix accepts one or more subject tokens without wildcards.
func checkInboxPrefix(p string) error {
	for _, tok := range strings.Split(p, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return errors.New("must be subject tokens separated by '.', without '*', '>' or spaces")
		}
	}
	return nil
}

// Check validates o as start-up configuration, calling report once per
// variable at fault with one line saying what is wrong: the server list,
// the credentials (a readable credentials file holding a user JWT and seed,
// and not together with a user and password), the TLS files (readable and
// parseable, certificate and key together) and the inbox prefix. Files are
// read here so that a missing one stops the service at start, not at its
// first reconnect.
func (o ConnOptions) Check(report func(key string, err error)) {
	if _, err := ParseServers(o.URL); err != nil {
		report("NATS_URL", err)
	}
	if o.CredsFile != "" {
		if o.User != "" || o.Password != "" {
			report("NATS_CREDS", errors.New("cannot be combined with NATS_USER/NATS_PASSWORD: a connection authenticates one way"))
		} else if err := checkCreds(o.CredsFile); err != nil {
			report("NATS_CREDS", err)
		}
	}
	if (o.TLS.CertFile == "") != (o.TLS.KeyFile == "") {
		report("NATS_TLS_CERT", errors.New("NATS_TLS_CERT and NATS_TLS_KEY: set both or neither"))
	} else {
		var probe nats.Options
		if o.TLS.CAFile != "" {
			if err := nats.RootCAs(o.TLS.CAFile)(&probe); err != nil {
				report("NATS_TLS_CA", fmt.Errorf("%q: %w", o.TLS.CAFile, unwrapNATS(err)))
			}
		}
		if o.TLS.CertFile != "" {
			if err := nats.ClientCert(o.TLS.CertFile, o.TLS.KeyFile)(&probe); err != nil {
				report("NATS_TLS_CERT", fmt.Errorf("%q with key %q: %w", o.TLS.CertFile, o.TLS.KeyFile, unwrapNATS(err)))
			}
		}
	}
	if _, key, err := o.inboxPrefix(); err != nil {
		report(key, err)
	}
}

// checkCreds loads the credentials file the way nats.go will at every
// connect: the user JWT and the seed that signs the server's nonce.
func checkCreds(path string) error {
	var probe nats.Options
	if err := nats.UserCredentials(path)(&probe); err != nil {
		return fmt.Errorf("%q: %w", path, unwrapNATS(err))
	}
	if _, err := probe.UserJWT(); err != nil {
		return fmt.Errorf("%q: no user JWT: %w", path, unwrapNATS(err))
	}
	if _, err := probe.SignatureCB([]byte("start-up check")); err != nil {
		return fmt.Errorf("%q: no usable seed: %w", path, unwrapNATS(err))
	}
	return nil
}

// unwrapNATS drops nats.go's "nats: " prefix, which says nothing the
// variable name does not.
func unwrapNATS(err error) error {
	msg := strings.TrimPrefix(err.Error(), "nats: ")
	return errors.New(msg)
}
