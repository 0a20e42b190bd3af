// Package natsx is the NATS side of the chassis: a connection that survives a
// late or restarting server, a micro service whose endpoints answer
// concurrently and never crash the process, and a typed request client with a
// deadline, hedged retries of idempotent subjects, a circuit breaker, metrics
// and trace propagation. The wire format
// is the reference's: {"data":…,"error":"<status>:<message>"}.
package natsx

import (
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"blogplatform/chassis/natsx/inbox"
)

// Liveness settings of every connection made by Connect.
const (
	ClientPingInterval = 2 * time.Second
	ClientMaxPingsOut  = 2
)

// ConnOptions configure Connect.
type ConnOptions struct {
	URL      string
	Name     string // client name shown in NATS monitoring
	User     string // optional credentials (per-service users); also names the inbox prefix
	Password string
	Logger   *slog.Logger
}

// Connect returns a connection that keeps trying: a server that is not up yet
// is retried with backoff (the connection reports itself as reconnecting
// meanwhile, and readiness says so), and a lost server is reconnected forever
// instead of giving up after a fixed number of attempts.
func Connect(o ConnOptions) (*nats.Conn, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		// A server that stops answering (frozen host, partition) is noticed
		// within about 6 s instead of the library's minutes, and the
		// connection moves on to reconnecting.
		nats.PingInterval(ClientPingInterval),
		nats.MaxPingsOutstanding(ClientMaxPingsOut),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			// Exponential backoff, capped: quick recovery after a blip, no
			// hammering during a long outage.
			d := 100 * time.Millisecond << min(attempts, 5)
			return min(d, 2*time.Second)
		}),
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
	if o.User != "" {
		// Replies come back under the user's own inbox prefix, the only
		// inbox subjects the server lets this user subscribe to: no other
		// service can read them (the default "_INBOX" is shared by all).
		if err := inbox.CheckUser(o.User); err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserInfo(o.User, o.Password), nats.CustomInboxPrefix(inbox.Prefix(o.User)))
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, err
	}
	if !nc.IsConnected() {
		log.Warn("nats not reachable yet; retrying in the background", "url", o.URL)
	}
	return nc, nil
}
