package seed

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"blogplatform/tools/internal/platform"
)

func TestRenderBar(t *testing.T) {
	tests := []struct {
		done, total int
		elapsed     time.Duration
		want        string
	}{
		{0, 300, 0, "seeding [------------------------------] 0/300 blogs   0%"},
		{120, 300, 2 * time.Second, "seeding [############------------------] 120/300 blogs  40%  60/s"},
		{7, 7, time.Second, "seeding [##############################] 7/7 blogs 100%  7/s"},
	}
	for _, tc := range tests {
		if got := renderBar(tc.done, tc.total, tc.elapsed); got != tc.want {
			t.Errorf("renderBar(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
		}
	}
}

func TestProgressPrintsTenLinesWhenNotATerminal(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out, false, 50)
	for range 50 {
		p.add(1)
	}
	p.done()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 11 { // the empty bar, then one line per tenth
		t.Fatalf("got %d lines, want 11:\n%s", len(lines), out.String())
	}
	if !strings.Contains(lines[10], "50/50 blogs 100%") {
		t.Errorf("last line %q does not show the end", lines[10])
	}
}

func TestMakeBlogIsValidAndDeterministic(t *testing.T) {
	for i := range 200 {
		b := makeBlog(i)
		if again := makeBlog(i); !reflect.DeepEqual(again, b) {
			t.Fatalf("blog %d differs between calls", i)
		}
		if n := len(b.Title); n < 3 || n > 500 {
			t.Errorf("blog %d: title length %d", i, n)
		}
		if n := len(b.Description); n < 3 || n > 2000 {
			t.Errorf("blog %d: description length %d", i, n)
		}
		if n := len(b.Text); n < 1 || n > 50000 {
			t.Errorf("blog %d: text length %d", i, n)
		}
		if s := slugify(b.Title); len(s) < 3 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			t.Errorf("blog %d: slug %q", i, s)
		}
	}
}

// TestSeedThroughTheGateway loads demo data into a real local platform and
// checks it the way a newcomer would look at it.
func TestSeedThroughTheGateway(t *testing.T) {
	work := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var logs lockedBuffer
	p, err := platform.Start(ctx, platform.Options{
		GatewayAddr: "127.0.0.1:0", Replicas: 1, Memory: true, WorkDir: work,
		KeysDir: work + "/keys", ProcessLogs: &logs,
	})
	if err != nil {
		t.Fatalf("platform: %v\n%s", err, logs.String())
	}
	defer func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()

	const blogs = 24 // blogs 14-16 end submitted, 17-19 drafts
	var bar bytes.Buffer
	res, err := Run(ctx, Options{
		GatewayURL: p.GatewayURL(), APIKey: platform.DevAPIKey,
		AdminEmail: platform.DevAdminEmail, AdminPassword: platform.DevAdminPassword,
		Blogs: blogs, Authors: 3, Progress: &bar,
	})
	if err != nil {
		t.Fatalf("seed: %v\n%s", err, logs.String())
	}
	if res.Published != 18 || res.Submitted != 3 || res.Drafts != 3 || len(res.Authors) != 3 {
		t.Fatalf("result %d published, %d submitted, %d drafts, %d authors; want 18, 3, 3, 3",
			res.Published, res.Submitted, res.Drafts, len(res.Authors))
	}
	if !strings.Contains(bar.String(), "24/24 blogs 100%") {
		t.Errorf("progress output %q never reached the end", bar.String())
	}

	api := &client{base: p.GatewayURL(), apiKey: platform.DevAPIKey, http: http.DefaultClient}
	t.Run("published blogs are listed", func(t *testing.T) {
		var latest []struct {
			ID string `json:"_id"`
		}
		if err := api.do(ctx, http.MethodGet, "/blog/list/latest?page=1&limit=100", "", nil, &latest); err != nil {
			t.Fatal(err)
		}
		listed := map[string]bool{}
		for _, b := range latest {
			listed[b.ID] = true
		}
		for _, id := range res.PublishedIDs {
			if !listed[id] {
				t.Errorf("published blog %s missing from /list/latest", id)
			}
		}
	})
	t.Run("tag pages and similar blogs are populated", func(t *testing.T) {
		var tagged []struct {
			ID string `json:"_id"`
		}
		if err := api.do(ctx, http.MethodGet, "/blog/list/tag/GO?page=1&limit=50", "", nil, &tagged); err != nil {
			t.Fatal(err)
		}
		if len(tagged) == 0 {
			t.Error("no blog tagged GO")
		}
		var similar []struct {
			ID string `json:"_id"`
		}
		if err := api.do(ctx, http.MethodGet, "/blog/list/similar/id/"+res.PublishedIDs[0], "", nil, &similar); err != nil {
			t.Fatal(err)
		}
		if len(similar) == 0 {
			t.Errorf("no similar blogs for %s", res.PublishedIDs[0])
		}
	})
	t.Run("authors hold the drafts and submitted blogs", func(t *testing.T) {
		for _, list := range []struct {
			path string
			want int
		}{
			// A submitted blog stays drafted until an editor publishes it.
			{"drafts", res.Drafts + res.Submitted},
			{"submitted", res.Submitted},
		} {
			total := 0
			for _, a := range res.Authors {
				var blogs []struct {
					ID string `json:"_id"`
				}
				if err := api.do(ctx, http.MethodGet, "/blog/author/"+list.path+"?page=1&limit=100", a.token, nil, &blogs); err != nil {
					t.Fatalf("%s: %v", a.Email, err)
				}
				total += len(blogs)
			}
			if total != list.want {
				t.Errorf("authors' %s lists hold %d blogs, want %d", list.path, total, list.want)
			}
		}
	})
	if t.Failed() {
		out := logs.String()
		os.Stderr.WriteString(out[max(0, len(out)-8000):])
	}
}

// lockedBuffer collects the replicas' output, written from several
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
