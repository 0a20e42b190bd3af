package natsx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseServers(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "nats://a:4222", want: []string{"nats://a:4222"}},
		{in: " nats://a:4222 , tls://b:4223,nats://u:p@[::1]:4224,", want: []string{"nats://a:4222", "tls://b:4223", "nats://u:p@[::1]:4224"}},
		{in: "", wantErr: "no server"},
		{in: " , ", wantErr: "no server"},
		{in: "nats://a:4222,a:4222", wantErr: "server 2 (a:4222): scheme must be nats:// or tls://"},
		{in: "http://a:4222", wantErr: "scheme must be"},
		{in: "nats://a", wantErr: "want host:port"},
		{in: "nats://:4222", wantErr: "want host:port"},
		{in: "nats://a:0", wantErr: "port must be"},
		{in: "nats://a:http", wantErr: "not a URL"},
		{in: "nats://a:4222/x", wantErr: "no path"},
		{in: "nats://user:s3cret@a", wantErr: "server 1 (nats://***@a)"},
		{in: "nats://user:s3cret@a:99999", wantErr: "port must be"},
	} {
		got, err := ParseServers(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseServers(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("ParseServers(%q): error repeats the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("ParseServers(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestCheckReportsEachVariable(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a credential"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	ok := ConnOptions{URL: "nats://a:4222", Name: "blog"}
	for _, tc := range []struct {
		name string
		edit func(o *ConnOptions)
		want map[string]string // variable → part of its message
	}{
		{"plain", func(o *ConnOptions) {}, nil},
		{"user", func(o *ConnOptions) { o.User, o.Password = "blog", "pw" }, nil},
		{"bad url", func(o *ConnOptions) { o.URL = "nats://a" }, map[string]string{"NATS_URL": "host:port"}},
		{"creds and user", func(o *ConnOptions) { o.CredsFile, o.User = garbage, "blog" },
			map[string]string{"NATS_CREDS": "cannot be combined"}},
		{"creds missing", func(o *ConnOptions) { o.CredsFile = missing }, map[string]string{"NATS_CREDS": "no such file"}},
		{"creds garbage", func(o *ConnOptions) { o.CredsFile = garbage }, map[string]string{"NATS_CREDS": "garbage"}},
		{"cert without key", func(o *ConnOptions) { o.TLS.CertFile = garbage },
			map[string]string{"NATS_TLS_CERT": "set both or neither"}},
		{"ca missing", func(o *ConnOptions) { o.TLS.CAFile = missing }, map[string]string{"NATS_TLS_CA": "missing"}},
		{"ca garbage", func(o *ConnOptions) { o.TLS.CAFile = garbage }, map[string]string{"NATS_TLS_CA": "parse"}},
		{"cert garbage", func(o *ConnOptions) { o.TLS.CertFile, o.TLS.KeyFile = garbage, missing },
			map[string]string{"NATS_TLS_CERT": "client certificate"}},
		{"bad prefix", func(o *ConnOptions) { o.InboxPrefix = "_INBOX.>" }, map[string]string{"NATS_INBOX_PREFIX": "without '*'"}},
		{"bad user", func(o *ConnOptions) { o.User = "a.b" }, map[string]string{"NATS_USER": "inbox prefix"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.edit(&o)
			got := map[string]string{}
			o.Check(func(key string, err error) {
				if _, dup := got[key]; dup {
					t.Errorf("%s reported twice", key)
				}
				got[key] = err.Error()
			})
			if len(got) != len(tc.want) {
				t.Fatalf("reported %v, want %v", got, tc.want)
			}
			for key, part := range tc.want {
				if !strings.Contains(got[key], part) {
					t.Errorf("%s: %q, want it to mention %q", key, got[key], part)
				}
				if strings.Contains(got[key], "\n") {
					t.Errorf("%s: more than one line: %q", key, got[key])
				}
			}
		})
	}
}

func TestInboxPrefix(t *testing.T) {
	for _, tc := range []struct {
		o    ConnOptions
		want string
	}{
		{ConnOptions{Name: "blog"}, ""}, // nats.go's shared default
		{ConnOptions{Name: "blog", User: "blogsvc"}, "_INBOX_blogsvc"},
		{ConnOptions{Name: "blog", CredsFile: "x.creds"}, "_INBOX_blog"},
		{ConnOptions{Name: "blog", CredsFile: "x.creds", InboxPrefix: "_INBOX.team"}, "_INBOX.team"},
		{ConnOptions{Name: "blog", User: "blogsvc", InboxPrefix: "_I_blog"}, "_I_blog"},
	} {
		if got, _, err := tc.o.inboxPrefix(); err != nil || got != tc.want {
			t.Errorf("%+v: %q, %v; want %q", tc.o, got, err, tc.want)
		}
	}
	if _, key, err := (ConnOptions{Name: "my.blog", CredsFile: "x"}).inboxPrefix(); err == nil || key != "NATS_SERVICE_NAME" {
		t.Errorf("service name with a dot: %s %v", key, err)
	}
}

func TestReconnectDelayIsJitteredAndCapped(t *testing.T) {
	for attempts := 1; attempts <= 10; attempts++ {
		base := min(100*time.Millisecond<<min(attempts, 5), 2*time.Second)
		seen := map[time.Duration]bool{}
		for range 50 {
			d := reconnectDelay(attempts)
			if d < base/2 || d > base {
				t.Fatalf("attempt %d: %s outside [%s, %s]", attempts, d, base/2, base)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Fatalf("attempt %d: no jitter", attempts)
		}
	}
}
