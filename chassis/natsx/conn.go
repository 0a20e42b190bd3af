// Package natsx is the NATS side of the chassis: a connection that survives a
// late or restarting server, a micro service whose endpoints answer
// concurrently and never crash the process, and a typed request client with a
// deadline, hedged retries of idempotent subjects, a circuit breaker, metrics
// and trace propagation. The wire format
// is the reference's: {"data":…,"error":"<status>:<message>"}.
package natsx

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Liveness settings of every connection made by Connect.
const (
	ClientPingInterval = 2 * time.Second
	ClientMaxPingsOut  = 2
)

// ConnOptions configure Connect.
type ConnOptions struct {
	// URL is one server or a comma-separated list of them (ParseServers).
	// The client tries them in random order (so replicas spread over a
	// cluster's nodes) and learns the cluster's other nodes from the
	// servers themselves.
	URL      string
	Name     string // client name shown in NATS monitoring
	User     string // optional credentials (per-service users); also names the inbox prefix
	Password string
	// CredsFile is a NATS credentials file (user JWT and seed) for servers
	// in operator/JWT mode; it excludes User and Password.
	CredsFile string
	// InboxPrefix overrides the reply subjects' prefix (see inboxPrefix).
	InboxPrefix string
	TLS         TLSOptions
	// NoRandomize tries the servers in the listed order instead: each
	// replica then prefers the first server of its own list (tests that
	// place replicas on chosen nodes, or a node in the replica's zone).
	NoRandomize bool
	Logger      *slog.Logger
}

// Connect returns a connection that keeps trying: a server that is not up yet
// is retried with backoff (the connection reports itself as reconnecting
// meanwhile, and readiness says so), and a lost server is reconnected forever,
// to whichever server of the list (or of the cluster) answers, instead of
// giving up after a fixed number of attempts.
//
// Nothing is buffered while disconnected: a publish (a request, a reply, a
// change event) made then fails at once. nats.go would by default keep it
// and send it after reconnecting, seconds later, when the caller has long
// been told that its request failed: a write reported as failed could then
// still happen, and a reply would reach nobody. Failing at once lets the
// caller answer 503 (or retry an idempotent request) while the outcome is
// still certain.
func Connect(o ConnOptions) (*nats.Conn, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	var problems []error
	o.Check(func(key string, err error) { problems = append(problems, fmt.Errorf("%s: %w", key, err)) })
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	servers, _ := ParseServers(o.URL) // checked above
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectBufSize(-1), // see above: nothing waits for a reconnect
		// A server that stops answering (frozen host, partition) is noticed
		// within about 6 s instead of the library's minutes, and the
		// connection moves on to reconnecting.
		nats.PingInterval(ClientPingInterval),
		nats.MaxPingsOutstanding(ClientMaxPingsOut),
		// After a lost server, nats.go tries the other servers it knows (its
		// list and the cluster's nodes the servers announce) at once, one
		// after the other; this delay is paid only after a whole round of
		// them failed. It replaces nats.go's ReconnectWait and
		// ReconnectJitter (which it makes inert), so it carries both itself.
		nats.CustomReconnectDelay(reconnectDelay),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("nats connected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected; reconnecting", "error", err.Error())
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("nats async error", "subject", subject, "error", err.Error())
		}),
	}
	if o.NoRandomize {
		opts = append(opts, nats.DontRandomize())
	}
	if o.User != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	opts = append(opts, o.TLS.options()...)
	// Replies come back under the user's own inbox prefix, the only inbox
	// subjects the server lets this user subscribe to: no other service can
	// read them (the default "_INBOX" is shared by all).
	if prefix, _, _ := o.inboxPrefix(); prefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(prefix))
	}
	nc, err := nats.Connect(strings.Join(servers, ","), opts...)
	if err != nil {
		return nil, err
	}
	if !nc.IsConnected() {
		log.Warn("nats not reachable yet; retrying in the background", "servers", redactedList(servers))
	}
	return nc, nil
}

// reconnectDelay is the pause after the attempts-th failed round of
// reconnects: exponential backoff, capped (quick recovery after a blip, no
// hammering during a long outage), and jittered over its upper half so the
// replicas that lost the same server do not all come back in lockstep.
func reconnectDelay(attempts int) time.Duration {
	d := min(100*time.Millisecond<<min(attempts, 5), 2*time.Second)
	return d/2 + rand.N(d/2+1)
}

// redactedList is servers for a log line, without passwords.
func redactedList(servers []string) string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = redactURL(s)
	}
	return strings.Join(out, ",")
}
