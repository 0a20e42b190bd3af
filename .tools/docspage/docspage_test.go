package docspage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"go.yaml.in/yaml/v3"

	authopenapi "blogplatform/auth_service/openapi"
	blogopenapi "blogplatform/blog_service/openapi"
	"blogplatform/tools/internal/platform"
	"blogplatform/tools/internal/seed"
)

// browserBudget bounds everything the browser does (start, page loads,
// clicks, the call, the screenshot).
const browserBudget = 55 * time.Second

func TestDocsPageInChromium(t *testing.T) {
	chromium := findChromium(t)
	p := startPlatform(t)
	gateway := p.GatewayURL()
	// Three demo blogs, so Try it out on the latest list (and the README's
	// screenshot of it) shows what a reader gets.
	if _, err := seed.Run(context.Background(), seed.Options{
		GatewayURL: gateway, APIKey: platform.DevAPIKey,
		AdminEmail: platform.DevAdminEmail, AdminPassword: platform.DevAdminPassword,
		Blogs: 3, Authors: 2,
	}); err != nil {
		t.Fatalf("demo blogs: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), browserBudget)
	defer cancel()
	started := time.Now()
	mark := func(step string) { t.Logf("%6.1fs %s", time.Since(started).Seconds(), step) }
	defer mark("browser part done")
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()), // empty: nothing remembered between runs
		chromedp.WindowSize(1280, 1024),
	)...)
	defer cancelAlloc()
	var seen pageEvents
	browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithListener(seen.record))
	defer cancelBrowser()

	// 1. The page, with the first document (auth): every operation listed.
	if err := chromedp.Do(browser,
		chromedp.Navigate(gateway+"/docs"),
		chromedp.WaitVisible(chromedp.CSS(`#operations-access-signInBasic`)),
	); err != nil {
		t.Fatalf("the page did not show auth's operations: %v%s", err, seen.summary())
	}
	checkOperations(t, browser, "auth", authopenapi.Spec)
	mark("auth document listed")

	// 2. Authorize: both security schemes are offered; the API key and an
	// access token (signed in as the seeded admin) are set.
	if err := chromedp.Do(browser,
		chromedp.Click(chromedp.CSS(`.auth-wrapper .authorize`)),
		chromedp.WaitVisible(chromedp.CSS(`.modal-ux .auth-container`)),
	); err != nil {
		t.Fatalf("the Authorize dialog did not open: %v%s", err, seen.summary())
	}
	schemes, err := chromedp.Run(browser, chromedp.Evaluate[[]string](`[...document.querySelectorAll(".modal-ux .auth-container h4")].map(h => h.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if !containsSubstrings(schemes, "apiKey", "bearerAuth") {
		t.Errorf("the Authorize dialog offers %q, want apiKey and bearerAuth", schemes)
	}
	token := signIn(t, gateway)
	box := func(scheme string) string {
		return `//div[contains(@class,"auth-container")][.//h4[contains(.,"` + scheme + `")]]`
	}
	if err := chromedp.Do(browser,
		chromedp.SendKeys(chromedp.Search(box("apiKey")+`//input`), platform.DevAPIKey),
		chromedp.Click(chromedp.Search(box("apiKey")+`//button[contains(@class,"authorize")]`)),
		chromedp.WaitVisible(chromedp.Search(box("apiKey")+`//button[contains(.,"Logout")]`)),
		// The token is long: inserted in one go, as a paste would, rather
		// than typed key by key.
		chromedp.Focus(chromedp.Search(box("bearerAuth")+`//input`)),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, input.InsertText, input.InsertTextParams{Text: token})
			return err
		}),
		chromedp.Click(chromedp.Search(box("bearerAuth")+`//button[contains(@class,"authorize")]`)),
		chromedp.WaitVisible(chromedp.Search(box("bearerAuth")+`//button[contains(.,"Logout")]`)),
		chromedp.Click(chromedp.CSS(`.modal-ux .btn-done`)),
		chromedp.WaitNotPresent(chromedp.CSS(`.modal-ux`)),
	); err != nil {
		t.Fatalf("setting the API key and the token in the Authorize dialog: %v%s", err, seen.summary())
	}
	mark("API key and token set")

	// 3. Try it out with both: GET /auth/profile/mine.
	profile := tryItOut(t, browser, &seen, `#operations-profile-getMyProfile`, nil)
	if profile.status != "200" || profile.url != gateway+"/auth/profile/mine" ||
		!strings.Contains(profile.curl, "x-api-key: "+platform.DevAPIKey) || !strings.Contains(profile.curl, "Authorization: Bearer "+token) {
		t.Errorf("Try it out on GET /auth/profile/mine: %+v, want 200 from %s with the key and the token", profile, gateway)
	}
	mark("Try it out on auth answered")

	// 4. The other document, through the page's selector; the key set in
	// Authorize is still there.
	if err := chromedp.Do(browser,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`(() => {
				const s = document.querySelector(".topbar select");
				s.value = "/blog/openapi.yaml";
				return s.dispatchEvent(new Event("change", {bubbles: true}));
			})()`)(ctx, tg)
			return err
		}),
		chromedp.WaitVisible(chromedp.CSS(`#operations-public-listLatestBlogs`)),
	); err != nil {
		t.Fatalf("switching to the blog document: %v%s", err, seen.summary())
	}
	checkOperations(t, browser, "blog", blogopenapi.Spec)
	mark("blog document listed")

	const op = `#operations-public-listLatestBlogs`
	latest := tryItOut(t, browser, &seen, op, map[string]string{"page": "1", "limit": "10"})
	if latest.status != "200" {
		t.Errorf("Try it out on GET /blog/list/latest answered %q, want 200", latest.status)
	}
	if want := gateway + "/blog/list/latest?page=1&limit=10"; latest.url != want {
		t.Errorf("Try it out called %q, want %q (the gateway the page came from)", latest.url, want)
	}
	if !strings.Contains(latest.curl, "x-api-key: "+platform.DevAPIKey) {
		t.Errorf("the call did not carry the key from the Authorize dialog:\n%s", latest.curl)
	}
	mark("Try it out on blog answered")

	// 5. The screenshot the README shows: the operation, the call and its
	// answer (a viewport tall enough for all three).
	if err := chromedp.Do(browser,
		chromedp.EmulateViewport(1280, 1500),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`(() => {
				const top = document.querySelector("`+op+`").getBoundingClientRect().top + window.scrollY;
				window.scrollTo(0, Math.max(0, top - 140));
				return true;
			})()`)(ctx, tg)
			return err
		}),
	); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	out := os.Getenv("DOCS_SCREENSHOT")
	if out == "" {
		out = filepath.Join(t.TempDir(), "docs-page.png")
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(png))

	// 6. Everything the browser asked for stayed on 127.0.0.1, and the
	// page's policy blocked nothing (a blocked file would mean the page
	// needs something its policy does not allow).
	requests, problems := seen.snapshot()
	if len(requests) < 8 {
		t.Errorf("only %d requests seen; the network events were not recorded", len(requests))
	}
	for _, r := range requests {
		u, err := url.Parse(r)
		if err != nil || u.Scheme != "data" && u.Hostname() != "127.0.0.1" {
			t.Errorf("a request left 127.0.0.1: %s", r)
		}
	}
	for _, msg := range problems {
		t.Errorf("browser reported: %s", msg)
	}
	for _, want := range []string{"/docs", "/docs/swagger-ui-bundle.js", "/auth/openapi.yaml", "/blog/openapi.yaml", "/auth/profile/mine", "/blog/list/latest?page=1&limit=10"} {
		if !slices.Contains(requests, gateway+want) {
			t.Errorf("no request for %s among %q", want, requests)
		}
	}
}

// call is what Swagger UI shows of an executed call.
type call struct{ status, url, curl string }

// tryItOut opens the operation, presses Try it out, fills the named
// parameters, presses Execute and returns the answer's status, the request
// URL and the curl command the page shows.
func tryItOut(t *testing.T, browser context.Context, seen *pageEvents, op string, params map[string]string) call {
	t.Helper()
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.Click(chromedp.CSS(op + ` .opblock-summary-control`)),
		chromedp.Click(chromedp.CSS(op + ` .try-out__btn`)),
	}
	for _, name := range slices.Sorted(maps.Keys(params)) {
		steps = append(steps, chromedp.SendKeys(chromedp.CSS(op+` tr[data-param-name="`+name+`"] input`), params[name]))
	}
	steps = append(steps,
		chromedp.Click(chromedp.CSS(op+` .execute`)),
		chromedp.WaitVisible(chromedp.CSS(op+` .live-responses-table tbody .response-col_status`)))
	if err := chromedp.Do(browser, steps...); err != nil {
		t.Fatalf("Try it out on %s: %v%s", op, err, seen.summary())
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(op+" "+sel)))
		if err != nil {
			t.Fatalf("%s %s: %v", op, sel, err)
		}
		return strings.TrimSpace(v)
	}
	return call{
		status: text(`.live-responses-table tbody .response-col_status`),
		url:    text(`.request-url pre`),
		curl:   text(`.curl-command`),
	}
}

// signIn signs the seeded admin in through the gateway and returns the
// access token.
func signIn(t *testing.T, gateway string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": platform.DevAdminEmail, "password": platform.DevAdminPassword})
	req, err := http.NewRequest(http.MethodPost, gateway+"/auth/signin/basic", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-api-key", platform.DevAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Data struct {
			Tokens struct {
				AccessToken string `json:"accessToken"`
			} `json:"tokens"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || resp.StatusCode != http.StatusOK || env.Data.Tokens.AccessToken == "" {
		t.Fatalf("signing in as %s: %d %v", platform.DevAdminEmail, resp.StatusCode, err)
	}
	return env.Data.Tokens.AccessToken
}

// checkOperations asserts that the page lists exactly the document's
// operations (method and path of each).
func checkOperations(t *testing.T, browser context.Context, name string, spec []byte) {
	t.Helper()
	listed, err := chromedp.Run(browser, chromedp.Evaluate[[]string](`[...document.querySelectorAll(".opblock")].map(o =>
		o.querySelector(".opblock-summary-method").textContent + " " + o.querySelector(".opblock-summary-path").getAttribute("data-path"))`))
	if err != nil {
		t.Fatal(err)
	}
	want := documentOperations(t, spec)
	slices.Sort(listed)
	if !slices.Equal(listed, want) {
		t.Errorf("%s: the page lists %d operations %q,\nthe document has %d: %q", name, len(listed), listed, len(want), want)
	}
}

// documentOperations lists "METHOD /path" for every operation of an
// OpenAPI document, sorted.
func documentOperations(t *testing.T, spec []byte) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(spec, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				out = append(out, strings.ToUpper(method)+" "+path)
			}
		}
	}
	if len(out) < 5 {
		t.Fatalf("only %d operations in the document", len(out))
	}
	slices.Sort(out)
	return out
}

// pageEvents records every request the page makes and every problem the
// browser reports (failed loads, policy violations, script errors).
type pageEvents struct {
	mu       sync.Mutex
	requests []string
	problems []string
}

func (e *pageEvents) record(ev any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		e.requests = append(e.requests, ev.Request.URL)
	case *network.EventLoadingFailed:
		e.problems = append(e.problems, fmt.Sprintf("loading failed: %s %s", ev.ErrorText, ev.BlockedReason))
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError || strings.Contains(ev.Entry.Text, "Content Security Policy") {
			e.problems = append(e.problems, fmt.Sprintf("%s: %s (%s)", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		e.problems = append(e.problems, fmt.Sprintf("exception: %s (%s:%d)", msg, d.URL, d.LineNumber))
	}
}

func (e *pageEvents) snapshot() (requests, problems []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.requests), slices.Clone(e.problems)
}

// summary is appended to a failure: what the page had asked for and what
// went wrong in it until then.
func (e *pageEvents) summary() string {
	requests, problems := e.snapshot()
	return fmt.Sprintf("\nrequests: %q\nbrowser problems: %q", requests, problems)
}

func containsSubstrings(list []string, subs ...string) bool {
	for _, s := range subs {
		if !slices.ContainsFunc(list, func(v string) bool { return strings.Contains(v, s) }) {
			return false
		}
	}
	return true
}

// findChromium returns the browser to drive: $CHROMIUM, else chromium on
// PATH. Missing is a failure, never a skip: CI installs it.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("CHROMIUM=%s: %v", p, err)
		}
		return path
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: this browser test needs Debian's chromium package " +
		"(apt-get install -y chromium; .ci/run installs it when missing), or CHROMIUM=/path/to/chrome")
	return ""
}

// startPlatform runs the local platform (one replica of each service, data
// in memory, the gateway on a free loopback port) for this test.
func startPlatform(t *testing.T) *platform.Platform {
	t.Helper()
	work := t.TempDir()
	logs := &tail{}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	p, err := platform.Start(ctx, platform.Options{
		GatewayAddr: "127.0.0.1:0",
		Replicas:    1,
		Memory:      true,
		WorkDir:     work,
		KeysDir:     filepath.Join(work, "keys"),
		ProcessLogs: logs,
	})
	if err != nil {
		t.Fatalf("the platform did not start: %v\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stopping the platform: %v", err)
		}
		if t.Failed() {
			t.Logf("platform logs (end):\n%s", logs.String())
		}
	})
	return p
}

// tail keeps the last 64 KiB of the replicas' output, for failures.
type tail struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if over := w.buf.Len() - 64<<10; over > 0 {
		w.buf.Next(over)
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

var _ io.Writer = (*tail)(nil)
