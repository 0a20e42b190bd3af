package resilience

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/blog_service/model"
	"blogplatform/devkit/loadtest"
	localplatform "blogplatform/tools/internal/platform"
)

// Targets of the replica-loss suite: what losing or freezing one replica of
// two may cost clients.
const (
	// SIGKILL or SIGSTOP of one replica: GET requests (public or protected)
	// that may fail, the slowest one allowed, and how soon throughput must
	// be back.
	targetFailedReads = 0
	targetMaxLatency  = time.Second
	targetRecovery    = 2 * time.Second
	// SIGTERM of one replica: failed requests of any kind.
	targetFailedOnTerm = 0
	// Writes the client was told succeeded but that do not read back
	// exactly as sent.
	targetLostWrites = 0
)

// Shape of every run: a closed loop of lossClients clients for lossDuration
// (or lossMaxRequests, a safety cap), the fault at lossFaultAt.
const (
	lossClients     = 12
	lossDuration    = 6 * time.Second
	lossFaultAt     = time.Second
	lossFreeze      = 3 * time.Second // SIGSTOP to SIGCONT
	lossMaxRequests = 300_000
	// lossMaxReruns bounds how many scenarios that missed a target are run
	// a second time (see TestReplicaLoss).
	lossMaxReruns = 4
	// lossRequestTimeout turns a hung request into a recorded failure
	// instead of a hung test.
	lossRequestTimeout = 10 * time.Second
	// Throughput (successful requests) is counted per lossBucket; it is back
	// once every window of lossWindow buckets holds lossRecoveredShare of the
	// rate before the fault, or of the rate the run settles at (over its
	// last lossSettleBuckets) when that is lower but at least
	// lossMinSettledShare of it: see recovery.
	lossBucket          = 100 * time.Millisecond
	lossWindow          = 10
	lossRecoveredShare  = 0.8
	lossSettleBuckets   = 10
	lossMinSettledShare = 0.5
)

// lossKind is one kind of request the load sends.
type lossKind struct {
	name  string
	write bool
	read  bool // a GET: the read targets apply
}

var (
	lossPublicRead    = lossKind{name: "public read", read: true}
	lossProtectedRead = lossKind{name: "protected read", read: true}
	lossWriteKind     = lossKind{name: "write", write: true}
)

var lossSignals = []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGTERM}

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGSTOP:
		return "SIGSTOP"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// lossScenario is one run: which replica gets which signal under which load.
type lossScenario struct {
	service string // auth or blog; its first replica is the victim
	signal  syscall.Signal
	kind    lossKind
}

func (sc lossScenario) victim() string { return sc.service + "1" }

func (sc lossScenario) String() string {
	return fmt.Sprintf("%s/%s/%s", sc.service, signalName(sc.signal), strings.ReplaceAll(sc.kind.name, " ", "-"))
}

// lossRow is a scenario's outcome.
type lossRow struct {
	lossScenario
	stats  lossStats
	writes *lossWriteCheck
	// problems are failures of the suite's own steps (injecting the fault,
	// restoring the platform): they fail the scenario whatever the load saw.
	problems []string
	capped   bool
	rerun    bool // the scenario's second run, after the first missed a target
	faultAt  time.Duration
	took     string // where the run's time went
}

// lossWriteCheck is what reading the written blogs back found.
type lossWriteCheck struct {
	acked, asWritten int
	lost             []string // acknowledged but missing or different
	failed           int
	appliedAnyway    int // answered as failed, yet stored
	absent           int
}

// lossSuite is the running platform and what every scenario needs.
type lossSuite struct {
	t       *testing.T
	p       *localplatform.Platform
	client  lossClient // with the admin's token
	blogID  string     // a published blog for public reads
	runID   string
	logFile string
	// store reads what the writes left behind, straight from the store.
	store *mongo.Client
}

func TestReplicaLoss(t *testing.T) {
	s := startLossSuite(t)
	var scenarios []lossScenario
	// Writes last: the drafts they add do not change the protected read's
	// list for the other runs.
	for _, kind := range []lossKind{lossPublicRead, lossProtectedRead, lossWriteKind} {
		for _, service := range []string{"auth", "blog"} {
			for _, sig := range lossSignals {
				scenarios = append(scenarios, lossScenario{service: service, signal: sig, kind: kind})
			}
		}
	}
	began := time.Now()
	var rows []lossRow
	for _, sc := range scenarios {
		row := s.run(sc)
		t.Logf("%-28s requests=%d failed=%d p99=%s max=%s (sent at %s) back=%s (fault at %s; %s) %s\n\tsucceeded per 100 ms: %v",
			sc, row.stats.requests, row.stats.failed, fmtLatency(row.stats.p99), fmtLatency(row.stats.max),
			row.stats.maxAt.Round(time.Millisecond),
			fmtRecovery(row.stats), row.faultAt.Round(time.Millisecond), row.took, strings.Join(row.problems, "; "), row.stats.buckets)
		rows = append(rows, row)
	}
	// A scenario that missed a target runs once more, and the second run is
	// the one asserted: on a machine shared with other work a single run
	// can miss by noise (a 1 s window a few percent under the bar), while a
	// real defect misses both times. Both runs are in the table.
	final := slices.Clone(rows)
	reruns := 0
	for i, row := range rows {
		misses := lossMisses(row)
		if len(misses) == 0 || reruns == lossMaxReruns {
			continue
		}
		reruns++
		t.Logf("%s missed a target (%s); running it once more", row.lossScenario, strings.Join(misses, "; "))
		again := s.run(row.lossScenario)
		again.rerun = true
		t.Logf("%-28s (again) requests=%d failed=%d p99=%s max=%s back=%s %s\n\tsucceeded per 100 ms: %v",
			again.lossScenario, again.stats.requests, again.stats.failed, fmtLatency(again.stats.p99), fmtLatency(again.stats.max),
			fmtRecovery(again.stats), strings.Join(again.problems, "; "), again.stats.buckets)
		final[i] = again
		rows = append(rows, again)
	}
	table := lossTable(rows, time.Since(began))
	t.Log("\n" + table)
	if path := os.Getenv("REPLICA_LOSS_TABLE"); path != "" {
		if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
			t.Errorf("writing the table: %v", err)
		}
	}

	for _, row := range final {
		t.Run(row.String(), func(t *testing.T) {
			for _, miss := range lossMisses(row) {
				t.Error(miss)
			}
		})
	}
	if t.Failed() {
		t.Logf("--- last process log lines ---\n%s", tailFile(s.logFile, 120))
	}
}

// lossMisses lists the targets one scenario's outcome missed.
func lossMisses(row lossRow) []string {
	misses := slices.Clone(row.problems)
	st := row.stats
	if st.requests == 0 {
		return append(misses, "no request completed")
	}
	failures := describeCounts(st.failureKinds, 5)
	switch {
	case row.signal == syscall.SIGTERM:
		if st.failed > targetFailedOnTerm {
			misses = append(misses, fmt.Sprintf("%d of %d requests failed (target: %d): %s", st.failed, st.requests, targetFailedOnTerm, failures))
		}
	case row.kind.read:
		if st.failed > targetFailedReads {
			misses = append(misses, fmt.Sprintf("%d of %d requests failed (target: %d): %s", st.failed, st.requests, targetFailedReads, failures))
		}
		if st.max > targetMaxLatency {
			misses = append(misses, fmt.Sprintf("slowest request took %s (target: %s), sent %s after the fault", fmtLatency(st.max), targetMaxLatency,
				(st.maxAt-row.faultAt).Round(time.Millisecond)))
		}
		if !st.recovered || st.recovery > targetRecovery {
			misses = append(misses, fmt.Sprintf("throughput back after %s (target: %s; %.0f req/s before the fault, %.0f at the end)",
				fmtRecovery(st), targetRecovery, st.preRate, st.endRate))
		}
	case row.kind.write:
		if st.badEnvelopes > 0 {
			misses = append(misses, fmt.Sprintf("%d failed writes were not a 5xx JSON envelope (transport errors, hangs, 4xx): %s", st.badEnvelopes, failures))
		}
	}
	if w := row.writes; w != nil && len(w.lost) > targetLostWrites {
		misses = append(misses, fmt.Sprintf("%d of %d acknowledged writes do not read back as written: %s", len(w.lost), w.acked, strings.Join(firstN(w.lost, 5), "; ")))
	}
	return misses
}

// startLossSuite starts the local platform (2 auth and 2 blog replicas as
// processes, the gateway in this process) with in-memory data, and prepares
// the admin's token and a published blog.
func startLossSuite(t *testing.T) *lossSuite {
	t.Helper()
	work := t.TempDir()
	logFile := filepath.Join(work, "processes.log")
	logs, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	begin := time.Now()
	p, err := localplatform.Start(ctx, localplatform.Options{
		GatewayAddr: "127.0.0.1:0",
		Replicas:    2,
		Memory:      true,
		WorkDir:     work,
		KeysDir:     filepath.Join(work, "keys"),
		// Request logs at info would cost the measured processes (and this
		// one, which copies every line) more than the requests themselves.
		ServiceEnv: map[string]map[string]string{
			"auth": {"LOG_LEVEL": "warn"},
			"blog": {"LOG_LEVEL": "warn"},
		},
		ProcessLogs: logs,
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatalf("the platform did not start: %v\n%s", err, tailFile(logFile, 100))
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stopping the platform: %v", err)
		}
	})
	// Runs before Stop: a replica left frozen by a failed run would hold
	// Stop for its whole grace period.
	t.Cleanup(func() {
		for _, r := range p.Replicas() {
			if r.Running() {
				_ = r.Signal(syscall.SIGCONT)
			}
		}
	})
	t.Logf("platform ready at %s in %s (race detector: %v, GOMAXPROCS %d)", p.GatewayURL(),
		time.Since(begin).Round(time.Millisecond), raceEnabled, runtime.GOMAXPROCS(0))

	var id [4]byte
	_, _ = rand.Read(id[:])
	s := &lossSuite{t: t, p: p, runID: hex.EncodeToString(id[:]), logFile: logFile}
	s.client = lossClient{http: loadtest.HTTPClient(lossClients), base: p.GatewayURL(), apiKey: localplatform.DevAPIKey}
	if s.store, err = mongo.Connect(options.Client().ApplyURI(p.Info().StoreURI)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.store.Disconnect(context.Background()) })

	r := s.must(s.client.send(ctx, http.MethodPost, "/auth/signin/basic", map[string]string{
		"email": localplatform.DevAdminEmail, "password": localplatform.DevAdminPassword,
	}))
	var signin struct {
		Data struct {
			Tokens struct {
				AccessToken string `json:"accessToken"`
			} `json:"tokens"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &signin); err != nil || signin.Data.Tokens.AccessToken == "" {
		t.Fatalf("sign-in: no access token in %s", r.body)
	}
	s.client.token = signin.Data.Tokens.AccessToken

	w := s.newWrite("setup", 0, 0)
	r = s.must(s.client.send(ctx, http.MethodPost, "/blog/author", w))
	s.blogID = blogID(r)
	for _, path := range []string{"/blog/author/submit/id/" + s.blogID, "/blog/editor/publish/id/" + s.blogID} {
		s.must(s.client.send(ctx, http.MethodPut, path, nil))
	}
	return s
}

// must fails the test unless the request answered 200.
func (s *lossSuite) must(r lossReply, err error) lossReply {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
	if r.status != http.StatusOK {
		s.t.Fatalf("status %d: %s", r.status, r.body)
	}
	return r
}

func blogID(r lossReply) string {
	var created struct {
		Data struct {
			ID string `json:"_id"`
		} `json:"data"`
	}
	_ = json.Unmarshal(r.body, &created)
	return created.Data.ID
}

// newWrite is a blog whose every field names its run, scenario, client and
// sequence number.
func (s *lossSuite) newWrite(scenario string, client, seq int) *lossWrite {
	key := fmt.Sprintf("%s-%s-c%d-n%d", s.runID, scenario, client, seq)
	return &lossWrite{
		Title:       "Replica loss " + key,
		Description: "written under load: " + key,
		DraftText:   "body of " + key,
		Slug:        fmt.Sprintf("%sc%d-n%d", s.slugPrefix(scenario), client, seq),
		ImgURL:      "https://example.com/" + key + ".png",
		Tags:        []string{"REPLICA-LOSS", strings.ToUpper(key)},
	}
}

// slugPrefix starts the slug of every blog a scenario writes.
func (s *lossSuite) slugPrefix(scenario string) string {
	return "rl-" + s.runID + "-" + scenario + "-"
}

// request returns the method, path and body of a request of kind.
func (s *lossSuite) request(kind lossKind, w *lossWrite) (string, string, any) {
	switch kind {
	case lossPublicRead:
		return http.MethodGet, "/blog/id/" + s.blogID, nil
	case lossProtectedRead:
		return http.MethodGet, "/blog/author/drafts?page=1&limit=10", nil
	default:
		return http.MethodPost, "/blog/author", w
	}
}

// run prepares a healthy platform, runs the load with the fault, restores
// the victim and, for writes, reads back what was written.
func (s *lossSuite) run(sc lossScenario) lossRow {
	row := lossRow{lossScenario: sc}
	if err := s.waitHealthy(); err != nil {
		row.problems = append(row.problems, "before the run: "+err.Error())
		return row
	}
	victim := s.p.Replica(sc.victim())
	scenarioKey := strings.ToLower(strings.NewReplacer("/", "-", "SIG", "").Replace(sc.String()))

	perClient := make([][]lossSample, lossClients)
	seqs := make([]int, lossClients)
	var faultAt time.Duration
	var injectErr error
	injected := make(chan struct{})
	begin := time.Now()
	go func() {
		defer close(injected)
		time.Sleep(lossFaultAt - time.Since(begin))
		faultAt = time.Since(begin)
		if injectErr = victim.Signal(sc.signal); injectErr != nil || sc.signal != syscall.SIGSTOP {
			return
		}
		time.Sleep(lossFreeze)
		injectErr = victim.Signal(syscall.SIGCONT)
	}()
	res := loadtest.Run(context.Background(), loadtest.Options{
		Name: sc.String(), Clients: lossClients, Duration: lossDuration, MaxRequests: lossMaxRequests,
	}, func(_ context.Context, c int) error {
		// Not the run's context: a request in flight when the run ends
		// finishes and is counted (a hang must show, not be cut off).
		ctx, cancel := context.WithTimeout(context.Background(), lossRequestTimeout)
		defer cancel()
		var w *lossWrite
		if sc.kind.write {
			seqs[c]++
			w = s.newWrite(scenarioKey, c, seqs[c])
		}
		method, path, body := s.request(sc.kind, w)
		sample := lossSample{start: time.Since(begin), write: w}
		r, err := s.client.send(ctx, method, path, body)
		sample.end, sample.status = time.Since(begin), r.status
		if err != nil || r.status != http.StatusOK {
			sample.failure = describeFailure(r, err)
			sample.clear = err == nil && r.status >= 500 && r.message() != ""
		} else if w != nil {
			w.acked, w.id = true, blogID(r)
		}
		perClient[c] = append(perClient[c], sample)
		if sample.failure != "" {
			return errors.New(sample.failure)
		}
		return nil
	})
	<-injected
	loadTook, restoreBegan := time.Since(begin), time.Now()
	if injectErr != nil {
		row.problems = append(row.problems, fmt.Sprintf("%s %s: %v", signalName(sc.signal), victim.Name, injectErr))
	}
	row.capped = res.Requests >= lossMaxRequests
	if err := s.restore(victim, sc.signal); err != nil {
		row.problems = append(row.problems, "restoring "+victim.Name+": "+err.Error())
	}

	var samples []lossSample
	for _, c := range perClient {
		samples = append(samples, c...)
	}
	var thawAt time.Duration
	if sc.signal == syscall.SIGSTOP {
		thawAt = faultAt + lossFreeze
	}
	row.stats = analyse(samples, lossDuration, faultAt, thawAt)
	row.faultAt = faultAt
	row.took = fmt.Sprintf("load %s, restore %s", loadTook.Round(time.Millisecond), time.Since(restoreBegan).Round(time.Millisecond))
	if sc.kind.write {
		checkBegan := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		check, err := s.checkWrites(ctx, s.slugPrefix(scenarioKey), samples)
		cancel()
		if err != nil {
			row.problems = append(row.problems, err.Error())
		}
		row.writes = check
		row.took += fmt.Sprintf(", read back %s", time.Since(checkBegan).Round(time.Millisecond))
	}
	return row
}

// restore brings the victim back: a killed or terminated replica is
// restarted on its address, a stopped one has been continued; either way it
// must be ready again.
func (s *lossSuite) restore(victim *localplatform.Replica, sig syscall.Signal) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.p.StopGrace()+time.Minute)
	defer cancel()
	if sig == syscall.SIGSTOP {
		return victim.WaitReady(ctx)
	}
	// Wait for the exit first: Restart would SIGTERM a replica still
	// draining, which is not what this scenario is about.
	exitCtx, cancelExit := context.WithTimeout(ctx, s.p.StopGrace())
	err := victim.Wait(exitCtx)
	cancelExit()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("still running %s after %s", signalName(sig), s.p.StopGrace())
	}
	if sig == syscall.SIGTERM && err != nil {
		// Record it, but restart anyway so the next scenarios run.
		restartErr := victim.Restart(ctx, s.p.StopGrace())
		return errors.Join(fmt.Errorf("exit after SIGTERM: %v (want status 0)", err), restartErr)
	}
	return victim.Restart(ctx, s.p.StopGrace())
}

// waitHealthy waits until every replica runs, the gateway sees every target
// ready, and a public and a protected read succeed several times in a row
// (so no breaker left open by the previous run skews the next one).
func (s *lossSuite) waitHealthy() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, r := range s.p.Replicas() {
		if !r.Running() {
			if err := r.Restart(ctx, s.p.StopGrace()); err != nil {
				return err
			}
		}
	}
	const inARow = 10
	streak := 0
	var last string
	for {
		ready := true
		for _, st := range s.p.GatewayStats() {
			if !st.Ready || st.Down {
				ready, last = false, fmt.Sprintf("gateway target %s ready=%v down=%v", st.Name, st.Ready, st.Down)
			}
		}
		if ready {
			// The author's own blog rather than the drafts list: the
			// writes leave thousands of drafts, and listing them is not
			// what this wait is about.
			for _, path := range []string{"/blog/id/" + s.blogID, "/blog/author/id/" + s.blogID} {
				r, err := s.client.send(ctx, http.MethodGet, path, nil)
				if err != nil || r.status != http.StatusOK {
					ready, last = false, fmt.Sprintf("GET %s: %s", path, describeFailure(r, err))
					break
				}
			}
		}
		if ready {
			if streak++; streak >= inARow {
				return nil
			}
			continue
		}
		streak = 0
		select {
		case <-ctx.Done():
			return fmt.Errorf("platform not healthy within a minute (last: %s)", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkWrites reads the scenario's blogs from the store in one query. Every
// blog acknowledged with 200 must be there, whole (every field as sent, a
// live draft with its search terms) under the _id the client was given;
// each failed write must be absent or, when stored anyway, whole as well.
func (s *lossSuite) checkWrites(ctx context.Context, slugPrefix string, samples []lossSample) (*lossWriteCheck, error) {
	check := &lossWriteCheck{}
	coll := s.store.Database(s.p.ServiceDatabase("blog")).Collection(model.CollectionName)
	cur, err := coll.Find(ctx, bson.M{"slug": bson.M{"$regex": "^" + regexp.QuoteMeta(slugPrefix)}})
	if err != nil {
		return nil, fmt.Errorf("reading the written blogs: %w", err)
	}
	var stored []model.Blog
	if err := cur.All(ctx, &stored); err != nil {
		return nil, fmt.Errorf("reading the written blogs: %w", err)
	}
	bySlug := make(map[string]model.Blog, len(stored))
	for _, b := range stored {
		bySlug[b.Slug] = b
	}
	for _, sm := range samples {
		w := sm.write
		if w == nil {
			continue
		}
		b, found := bySlug[w.Slug]
		delete(bySlug, w.Slug)
		switch {
		case w.acked:
			check.acked++
			if problem := compareStored(w, b, found); problem != "" {
				check.lost = append(check.lost, problem)
			} else {
				check.asWritten++
			}
		case !found:
			check.failed++
			check.absent++
		default:
			check.failed++
			check.appliedAnyway++
			if problem := compareStored(w, b, true); problem != "" {
				check.lost = append(check.lost, "applied despite failure, but "+problem)
			}
		}
	}
	for slug := range bySlug {
		check.lost = append(check.lost, slug+": stored, but no client sent it")
	}
	return check, nil
}

// compareStored is "" when b is w stored whole.
func compareStored(w *lossWrite, b model.Blog, found bool) string {
	switch {
	case !found:
		return w.Slug + ": not stored"
	case w.id != "" && b.ID.Hex() != w.id:
		return fmt.Sprintf("%s: stored as %s, the client was told %s", w.Slug, b.ID.Hex(), w.id)
	case w.acked && w.id == "":
		return w.Slug + ": acknowledged without an _id"
	case b.Title != w.Title || b.Description != w.Description || b.DraftText != w.DraftText ||
		b.ImgURL == nil || *b.ImgURL != w.ImgURL || !slices.Equal(b.Tags, w.Tags):
		return fmt.Sprintf("%s: stored fields differ from those sent: %+v", w.Slug, b)
	case !b.Status || !b.Drafted || len(b.Terms) == 0:
		return fmt.Sprintf("%s: stored incomplete (status %v, drafted %v, %d terms)", w.Slug, b.Status, b.Drafted, len(b.Terms))
	}
	return ""
}

func firstN(s []string, n int) []string { return s[:min(len(s), n)] }

func describeCounts(counts []lossCount, n int) string {
	var parts []string
	for _, c := range counts[:min(len(counts), n)] {
		parts = append(parts, fmt.Sprintf("%s ×%d", c.what, c.n))
	}
	if len(counts) > n {
		parts = append(parts, fmt.Sprintf("%d more kinds", len(counts)-n))
	}
	return strings.Join(parts, "; ")
}

// tailFile returns the last n lines of a file (the processes' log).
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
