package deploycheck

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"blogplatform/chassis/natsx/inbox"
	"blogplatform/devkit/embedded"
)

const (
	natsAuthPassword = "nats-auth-test-pwd"
	natsBlogPassword = "nats-blog-test-pwd"
)

// natsContainerEnv returns the NATS_* passwords as compose hands them to the
// nats container (wrapping included) for the given root .env passwords; both
// compose files must hand over the same values.
func natsContainerEnv(t *testing.T, authPassword, blogPassword string) map[string]string {
	t.Helper()
	var out map[string]string
	for _, f := range composeFiles {
		project := mustLoadComposeWith(t, f.name, map[string]string{
			"NATS_AUTH_PASSWORD": authPassword, "NATS_BLOG_PASSWORD": blogPassword,
		})
		env := envOf(project.Services["nats"])
		got := map[string]string{}
		for _, key := range []string{"NATS_AUTH_PASSWORD", "NATS_BLOG_PASSWORD"} {
			v, ok := env[key]
			if !ok {
				t.Fatalf("%s does not pass %s to the nats container", f.name, key)
			}
			got[key] = v
		}
		if out != nil && !maps.Equal(out, got) {
			t.Fatalf("the compose files pass different NATS passwords: %q vs %q", out, got)
		}
		out = got
	}
	return out
}

// processNATSConfig parses .extra/nats/nats-server.conf the way nats-server
// does at start-up, with the given container environment. A panic inside the
// parser (a value of the wrong type) is reported as an error.
func processNATSConfig(t *testing.T, env map[string]string) (opts *server.Options, err error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	defer func() {
		if r := recover(); r != nil {
			opts, err = nil, fmt.Errorf("nats-server config parser panicked: %v", r)
		}
	}()
	return server.ProcessConfigFile(filepath.Join(repoRoot(t), ".extra/nats/nats-server.conf"))
}

// startConfiguredNATS runs nats-server in-process with .extra/nats/nats-server.conf,
// the file compose mounts, with the environment compose gives its container,
// on random ports.
func startConfiguredNATS(t *testing.T) *server.Server {
	t.Helper()
	opts, err := processNATSConfig(t, natsContainerEnv(t, natsAuthPassword, natsBlogPassword))
	if err != nil {
		t.Fatalf("nats-server.conf: %v", err)
	}
	// The ports the compose file and health check rely on. Monitoring
	// answers without credentials, so it listens on the container's
	// loopback only (the health check runs inside the container).
	if opts.Port != 4222 || opts.HTTPPort != 8222 || opts.HTTPHost != "127.0.0.1" {
		t.Errorf("client port %d, monitoring %s:%d; want 4222 and 127.0.0.1:8222", opts.Port, opts.HTTPHost, opts.HTTPPort)
	}
	opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	opts.HTTPHost, opts.HTTPPort = "127.0.0.1", server.RANDOM_PORT
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// Any password an operator puts in .env reaches nats-server unchanged,
// including values its configuration syntax would otherwise read as a
// number, a boolean, a size or a date.
func TestNATSConfigAcceptsAnyPassword(t *testing.T) {
	passwords := []string{
		"123456", "007", "1.5", "true", "no", "1k", "2MB", "2026-11-29T10:00:00Z",
		"with space", "has#hash", "semi;colon", "comma,pass", `dq"uote`, `back\slash`,
		"$dollar", "{brace}", "[bracket]", "=equals", "-leading-dash", "Zx9_p@ss-Word!",
	}
	// Compose substitutes the value literally: load the files once with a
	// marker and put each password where the marker lands.
	const marker = "Marker-5e1d"
	template := natsContainerEnv(t, marker, "blog-"+marker)
	for _, password := range passwords {
		t.Run(password, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range template {
				env[k] = strings.ReplaceAll(v, marker, password)
			}
			opts, err := processNATSConfig(t, env)
			if err != nil {
				t.Fatalf("nats-server refuses the configuration: %v", err)
			}
			got := map[string]string{}
			for _, u := range opts.Users {
				got[u.Username] = u.Password
			}
			if got["auth"] != password || got["blog"] != "blog-"+password {
				t.Errorf("users %q, want auth=%q blog=%q", got, password, "blog-"+password)
			}
		})
	}
}

// A password nats-server cannot take as a string must stop it with an error
// rather than start it with a different password.
func TestNATSConfigRejectsASingleQuoteLoudly(t *testing.T) {
	opts, err := processNATSConfig(t, natsContainerEnv(t, "it's", natsBlogPassword))
	t.Logf("nats-server: %v", err)
	if err == nil {
		for _, u := range opts.Users {
			if u.Username == "auth" && u.Password != "it's" {
				t.Fatalf("a password with a single quote became %q silently", u.Password)
			}
		}
	}
}

// The server drops a frozen or partitioned client within about 1.5 s, so
// its queue subscriptions stop receiving requests; the compose server and
// the local platform's embedded one use the same numbers.
func TestNATSConfigPingSettings(t *testing.T) {
	opts, err := processNATSConfig(t, natsContainerEnv(t, natsAuthPassword, natsBlogPassword))
	if err != nil {
		t.Fatal(err)
	}
	if opts.PingInterval != embedded.NATSPingInterval || opts.MaxPingsOut != embedded.NATSMaxPingsOut {
		t.Errorf("ping_interval %s, ping_max %d; want %s and %d (the embedded server's)", opts.PingInterval, opts.MaxPingsOut,
			embedded.NATSPingInterval, embedded.NATSMaxPingsOut)
	}
}

// connect returns the connection and a channel of its asynchronous errors
// (permission violations arrive that way).
func connect(t *testing.T, srv *server.Server, user, password string) (*nats.Conn, <-chan error, error) {
	t.Helper()
	asyncErrs := make(chan error, 16)
	options := []nats.Option{
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case asyncErrs <- err:
			default:
			}
		}),
		nats.MaxReconnects(0),
	}
	if user != "" {
		// As natsx.Connect does: replies in the user's own inbox.
		options = append(options, nats.UserInfo(user, password), nats.CustomInboxPrefix(inbox.Prefix(user)))
	}
	nc, err := nats.Connect(srv.ClientURL(), options...)
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, asyncErrs, err
}

func TestNATSConfigRequiresTheServicesCredentials(t *testing.T) {
	srv := startConfiguredNATS(t)
	tests := []struct {
		name, user, password string
		wantOK               bool
	}{
		{"anonymous", "", "", false},
		{"auth with blog's password", "auth", natsBlogPassword, false},
		{"unknown user", "mallory", natsAuthPassword, false},
		{"auth", "auth", natsAuthPassword, true},
		{"blog", "blog", natsBlogPassword, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := connect(t, srv, tc.user, tc.password)
			if (err == nil) != tc.wantOK {
				t.Errorf("connect as %q: err = %v, want success %v", tc.user, err, tc.wantOK)
			}
		})
	}
}

func TestNATSConfigFailsWithoutPasswords(t *testing.T) {
	for _, missing := range []string{"NATS_AUTH_PASSWORD", "NATS_BLOG_PASSWORD"} {
		t.Run(missing, func(t *testing.T) {
			env := natsContainerEnv(t, natsAuthPassword, natsBlogPassword)
			for k, v := range env {
				t.Setenv(k, v)
			}
			// t.Setenv restores the variable afterwards; unset it for this test.
			if err := os.Unsetenv(missing); err != nil {
				t.Fatal(err)
			}
			_, err := server.ProcessConfigFile(filepath.Join(repoRoot(t), ".extra/nats/nats-server.conf"))
			if err == nil || !strings.Contains(err.Error(), missing) {
				t.Errorf("config without %s: err = %v, want a refusal naming it", missing, err)
			}
		})
	}
}

// The reference's flaw: anyone could subscribe to auth.* and answer in
// auth_service's place. Here auth serves (queue group q, like nats.go/micro),
// blog can call it and discover it, and blog cannot listen on auth subjects.
func TestNATSConfigPermissions(t *testing.T) {
	srv := startConfiguredNATS(t)
	authConn, authErrs, err := connect(t, srv, "auth", natsAuthPassword)
	if err != nil {
		t.Fatal(err)
	}
	blogConn, blogErrs, err := connect(t, srv, "blog", natsBlogPassword)
	if err != nil {
		t.Fatal(err)
	}

	svc, err := micro.AddService(authConn, micro.Config{Name: "auth", Version: "1.0.0", QueueGroup: "q"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	for name, subject := range map[string]string{"authentication": "auth.authentication", "authorization": "auth.authorization",
		"authenticate_authorize": "auth.authenticate.authorize", "profile_user": "auth.profile.user"} {
		err := svc.AddEndpoint(name, micro.HandlerFunc(func(r micro.Request) {
			_ = r.Respond([]byte(`{"data":"` + r.Subject() + `","error":null}`))
		}), micro.WithEndpointSubject(subject))
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := authConn.Flush(); err != nil {
		t.Fatal(err)
	}

	t.Run("blog calls auth", func(t *testing.T) {
		for _, subject := range []string{"auth.authentication", "auth.authorization", "auth.authenticate.authorize", "auth.profile.user"} {
			msg, err := blogConn.Request(subject, []byte(`{}`), 2*time.Second)
			if err != nil || !strings.Contains(string(msg.Data), subject) {
				t.Errorf("request %s as blog: %v %v", subject, err, msg)
			}
		}
	})

	t.Run("blog discovers auth through $SRV", func(t *testing.T) {
		msg, err := blogConn.Request("$SRV.PING.auth", nil, 2*time.Second)
		if err != nil || !strings.Contains(string(msg.Data), `"name":"auth"`) {
			t.Errorf("$SRV.PING.auth as blog: %v %v", err, msg)
		}
	})

	t.Run("blog cannot subscribe to auth subjects", func(t *testing.T) {
		for _, subject := range []string{"auth.authentication", "auth.authenticate.authorize", "auth.>"} {
			sub, err := blogConn.Subscribe(subject, func(*nats.Msg) {})
			if err != nil {
				t.Fatal(err)
			}
			if err := blogConn.Flush(); err != nil {
				t.Fatal(err)
			}
			if !waitPermissionViolation(blogErrs, subject) {
				t.Errorf("blog subscribed to %s without a permissions violation", subject)
			}
			_ = sub.Unsubscribe()
		}
	})

	// Each service reads only its own replies: blog cannot subscribe to
	// auth's inbox or the shared default one, nor write into auth's inbox;
	// auth writes into blog's inbox only to answer a request.
	t.Run("inboxes are private", func(t *testing.T) {
		for _, subject := range []string{inbox.Subjects("auth"), "_INBOX.>", ">"} {
			sub, err := blogConn.SubscribeSync(subject)
			if err != nil {
				t.Fatal(err)
			}
			_ = blogConn.Flush()
			if !waitPermissionViolation(blogErrs, subject) {
				t.Errorf("blog subscribed to %s without a permissions violation", subject)
			}
			_ = sub.Unsubscribe()
		}
		forged := inbox.Prefix("auth") + ".forged"
		if err := blogConn.Publish(forged, []byte("x")); err != nil {
			t.Fatal(err)
		}
		_ = blogConn.Flush()
		if !waitPermissionViolation(blogErrs, forged) {
			t.Errorf("blog published into auth's inbox (%s)", forged)
		}
		unsolicited := inbox.Prefix("blog") + ".unsolicited"
		if err := authConn.Publish(unsolicited, []byte("x")); err != nil {
			t.Fatal(err)
		}
		_ = authConn.Flush()
		if !waitPermissionViolation(authErrs, unsolicited) {
			t.Errorf("auth published into blog's inbox without a request (%s)", unsolicited)
		}
	})

	t.Run("blog cannot publish outside its subjects", func(t *testing.T) {
		if err := blogConn.Publish("blog.anything", []byte("x")); err != nil {
			t.Fatal(err)
		}
		_ = blogConn.Flush()
		if !waitPermissionViolation(blogErrs, "blog.anything") {
			t.Error("blog published to blog.anything without a permissions violation")
		}
	})

	// Change events reach every replica: auth announces on events.auth.>
	// and follows its own, blog follows auth's and announces and follows
	// its own; neither can speak for the other. Both announce presence and
	// acknowledge events of either stream.
	t.Run("change events", func(t *testing.T) {
		follow := func(nc *nats.Conn, subject string) *nats.Subscription {
			sub, err := nc.SubscribeSync(subject)
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			return sub
		}
		authFollowsAuth, blogFollowsAuth := follow(authConn, "events.auth.>"), follow(blogConn, "events.auth.>")
		blogFollowsBlog := follow(blogConn, "events.blog.>")
		authPresence, blogPresence := follow(authConn, "events.presence.>"), follow(blogConn, "events.presence.>")
		authAcks, blogAcks := follow(authConn, "events.ack.>"), follow(blogConn, "events.ack.>")
		for _, tc := range []struct {
			publisher *nats.Conn
			subject   string
			followers []*nats.Subscription
		}{
			{authConn, "events.auth.changed", []*nats.Subscription{authFollowsAuth, blogFollowsAuth}},
			{blogConn, "events.blog.changed", []*nats.Subscription{blogFollowsBlog}},
			{authConn, "events.presence.events.auth.changed", []*nats.Subscription{authPresence, blogPresence}},
			{blogConn, "events.presence.events.auth.changed", []*nats.Subscription{authPresence, blogPresence}},
			{blogConn, "events.presence.events.blog.changed", []*nats.Subscription{authPresence, blogPresence}},
			{authConn, "events.ack.someblogreplica", []*nats.Subscription{authAcks, blogAcks}},
			{blogConn, "events.ack.someauthreplica", []*nats.Subscription{authAcks, blogAcks}},
		} {
			if err := tc.publisher.Publish(tc.subject, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			for _, sub := range tc.followers {
				if _, err := sub.NextMsg(2 * time.Second); err != nil {
					t.Errorf("%s did not reach a follower: %v", tc.subject, err)
				}
			}
		}
		for _, tc := range []struct {
			conn    *nats.Conn
			errs    <-chan error
			subject string
		}{
			{blogConn, blogErrs, "events.auth.changed"},
			{authConn, authErrs, "events.blog.changed"},
		} {
			if err := tc.conn.Publish(tc.subject, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			_ = tc.conn.Flush()
			if !waitPermissionViolation(tc.errs, tc.subject) {
				t.Errorf("published %s for the other service without a permissions violation", tc.subject)
			}
		}
	})
}

func waitPermissionViolation(errs <-chan error, subject string) bool {
	deadline := time.After(2 * time.Second)
	for {
		select {
		case err := <-errs:
			if errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				if strings.Contains(err.Error(), subject) {
					return true
				}
			}
		case <-deadline:
			return false
		}
	}
}
