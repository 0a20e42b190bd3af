package embedded

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"blogplatform/chassis/natsx/inbox"
)

// Liveness settings of the embedded server: a client that stops answering
// pings (a frozen or partitioned replica) is dropped after about
// NATSPingInterval*(NATSMaxPingsOut+1) ≈ 1.5 s, and with it its queue
// subscriptions, so requests stop being routed to it; until then the
// clients' hedged requests route around it. A live client answers a ping
// from its read loop within milliseconds, so even a busy one is not dropped.
const (
	NATSPingInterval = 500 * time.Millisecond
	NATSMaxPingsOut  = 2
)

// natsReadyTimeout bounds how long StartNATS and Restart wait for the server
// to accept client connections.
const natsReadyTimeout = 10 * time.Second

// What every user with restricted permissions is nevertheless allowed,
// because request/reply and the micro framework need it:
//   - subscribing to its own inbox, inbox.Subjects(name) (e.g.
//     "_INBOX_blog.>"): replies to its requests arrive there (natsx.Connect
//     sets that prefix). Nobody else may subscribe to it, so one service
//     cannot read another's replies; the shared "_INBOX.>" is not allowed.
//   - answering a request it received (the server's allow_responses: one
//     publish to that request's reply subject, within two minutes), which
//     is how a responder reaches the requester's inbox without being
//     allowed to publish into other users' inboxes at will.
//   - "$SRV.>": the nats.go micro framework's discovery subjects ($SRV.PING,
//     $SRV.INFO, $SRV.STATS), which every micro service subscribes to.
const discoverySubjects = "$SRV.>"

// NATSUser is one client account of the embedded NATS server.
type NATSUser struct {
	Name     string
	Password string
	// Publish and Subscribe are allow lists of subjects (wildcards allowed);
	// nil leaves that direction unrestricted. A restricted subscriber always
	// gets its own inbox and micro discovery on top, a restricted publisher
	// micro discovery and replies to the requests it receives (see
	// discoverySubjects). A restricted user's name must be usable as an
	// inbox prefix (inbox.CheckUser).
	Publish   []string
	Subscribe []string
}

func (u NATSUser) restricted() bool { return u.Publish != nil || u.Subscribe != nil }

// NATSOptions configures [StartNATS]. The zero value is a server on a random
// 127.0.0.1 port without authentication and without logging.
type NATSOptions struct {
	// Host to listen on; "" means "127.0.0.1".
	Host string
	// Port to listen on; 0 or -1 means a random free port.
	Port int
	// Users, when non-empty, turns on username/password authentication: every
	// client must then be one of these users.
	Users []NATSUser
	// Logger receives the server's notices, warnings and errors; nil turns
	// server logging off.
	Logger *slog.Logger
	// Debug also forwards the server's debug lines to Logger (at Debug level).
	Debug bool
}

// NATS is a running embedded nats-server. It is safe for concurrent use.
type NATS struct {
	opts NATSOptions
	host string
	// tune, when set, adjusts every start's options (a cluster node's name
	// and routes, see NATSCluster).
	tune func(*server.Options)

	mu   sync.Mutex
	srv  *server.Server
	port int // fixed after the first start so Restart keeps the URL
}

// StartNATS starts an embedded NATS server and waits until it accepts
// client connections.
func StartNATS(opts NATSOptions) (*NATS, error) { return startNATSTuned(opts, nil) }

func startNATSTuned(opts NATSOptions, tune func(*server.Options)) (*NATS, error) {
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := opts.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	for _, u := range opts.Users {
		if u.Name == "" {
			return nil, errors.New("embedded: NATS user with an empty name")
		}
		if err := inbox.CheckUser(u.Name); u.restricted() && err != nil {
			return nil, fmt.Errorf("embedded: %w", err)
		}
	}
	n := &NATS{opts: opts, host: host, tune: tune}
	srv, err := n.start(port)
	if err != nil {
		return nil, err
	}
	n.srv = srv
	n.port = srv.Addr().(*net.TCPAddr).Port
	return n, nil
}

// serverOptions builds fresh options for every start: nats-server mutates
// the *Options it is given, so they are never reused across servers.
func (n *NATS) serverOptions(port int) *server.Options {
	o := &server.Options{
		Host:   n.host,
		Port:   port,
		NoSigs: true, // the embedding process owns signal handling
		NoLog:  n.opts.Logger == nil,
		// No HTTP monitoring, cluster (but for NATSCluster's nodes, see
		// tune), leafnode or JetStream: not needed by the platform, and
		// each would open more ports.
		ServerName:   "embedded-nats",
		PingInterval: NATSPingInterval,
		MaxPingsOut:  NATSMaxPingsOut,
	}
	for _, u := range n.opts.Users {
		user := &server.User{Username: u.Name, Password: u.Password}
		if u.restricted() {
			user.Permissions = &server.Permissions{
				Publish:   allowList(u.Publish, discoverySubjects),
				Subscribe: allowList(u.Subscribe, inbox.Subjects(u.Name), discoverySubjects),
			}
			if u.Publish != nil {
				// Zero values: the server's defaults (one reply per
				// request, within two minutes).
				user.Permissions.Response = &server.ResponsePermission{}
			}
		}
		o.Users = append(o.Users, user)
	}
	if n.tune != nil {
		n.tune(o)
	}
	return o
}

// allowList is a restricted user's allow list: its own subjects plus the
// always allowed ones; nil stays nil (that direction is not restricted).
func allowList(subjects []string, always ...string) *server.SubjectPermission {
	if subjects == nil {
		return nil
	}
	return &server.SubjectPermission{Allow: append(append([]string{}, subjects...), always...)}
}

func (n *NATS) start(port int) (*server.Server, error) {
	srv, err := server.NewServer(n.serverOptions(port))
	if err != nil {
		return nil, fmt.Errorf("embedded: NATS server: %w", err)
	}
	if n.opts.Logger != nil {
		srv.SetLogger(natsLogger{l: n.opts.Logger}, n.opts.Debug, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(natsReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded: NATS server on %s:%d not ready after %s", n.host, port, natsReadyTimeout)
	}
	return srv, nil
}

// ClientURL is the URL clients connect to, e.g. "nats://127.0.0.1:42111". It
// stays the same across Restart.
func (n *NATS) ClientURL() string {
	return "nats://" + net.JoinHostPort(n.host, strconv.Itoa(n.Port()))
}

// Host is the listen host.
func (n *NATS) Host() string { return n.host }

// Port is the listen port; it stays the same across Restart.
func (n *NATS) Port() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.port
}

// Server gives access to the underlying server, e.g. for connection counts
// (NumClients) in tests. It changes on Restart and is nil after Shutdown.
func (n *NATS) Server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// Shutdown stops the server and waits until it has released its port and
// dropped its clients. It is idempotent. Clients see a disconnect and, with
// nats.go defaults, keep trying to reconnect.
func (n *NATS) Shutdown() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.shutdownLocked()
}

func (n *NATS) shutdownLocked() {
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = nil
}

// Restart stops the server (if running) and starts a new one on the same host
// and port with the same users, then waits until it accepts connections. It
// is meant for fault-injection tests: connected nats.go clients reconnect to
// the same URL on their own. Subscriptions are restored by the clients; there
// is no server-side state to lose (no JetStream).
func (n *NATS) Restart() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.shutdownLocked()

	// The listener socket is closed by Shutdown, and Go sets SO_REUSEADDR, so
	// the port can be bound again at once; retry briefly anyway in case the
	// kernel has not released it yet.
	var lastErr error
	deadline := time.Now().Add(natsReadyTimeout)
	for time.Now().Before(deadline) {
		srv, err := n.start(n.port)
		if err == nil {
			n.srv = srv
			return nil
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("embedded: NATS restart on port %d: %w", n.port, lastErr)
}

// natsLogger adapts nats-server's Logger interface to slog.
type natsLogger struct{ l *slog.Logger }

func (g natsLogger) Noticef(format string, v ...any) {
	g.l.Info(fmt.Sprintf(format, v...), "component", "nats")
}
func (g natsLogger) Warnf(format string, v ...any) {
	g.l.Warn(fmt.Sprintf(format, v...), "component", "nats")
}
func (g natsLogger) Fatalf(format string, v ...any) {
	g.l.Error(fmt.Sprintf(format, v...), "component", "nats", "fatal", true)
}
func (g natsLogger) Errorf(format string, v ...any) {
	g.l.Error(fmt.Sprintf(format, v...), "component", "nats")
}
func (g natsLogger) Debugf(format string, v ...any) {
	g.l.Debug(fmt.Sprintf(format, v...), "component", "nats")
}
func (g natsLogger) Tracef(format string, v ...any) {
	g.l.Debug(fmt.Sprintf(format, v...), "component", "nats")
}
