package tests

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"testing"

	"blogplatform/blog_service/internal/testkit"
)

func TestTmpSlowRedisCoherence(t *testing.T) {
	for _, timeout := range []string{"1ms", "2ms", "5ms"} {
		t.Run(timeout, func(t *testing.T) {
			testkit.StartFakeAuth(t, env.NATSURL(), testkit.Normal, 0)
			app := testkit.NewApp(t, env, redisDBs, testkit.Settings{"REDIS_TIMEOUT": timeout, "CACHE_RETRY_INTERVAL": "10ms"})
			c := newCoherence(t, env, redisDBs, app)
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					app.Redis.Eval(context.Background(), "local i=0 while i<200000 do i=i+1 end return 1", nil)
					time.Sleep(3 * time.Millisecond)
				}
			}()
			author, editor := testkit.AuthorToken, testkit.EditorToken
			a := app.Create(t, author, testkit.NewBlogBody("slow-a"))
			b := app.Create(t, author, testkit.NewBlogBody("slow-b"))
			c.watch(a, b)
			c.check(t, "creates")
			for i := 0; i < 5; i++ {
				for _, s := range []struct{ m, p, tok string; body any }{
					{http.MethodPut, "/author/submit/id/" + a.ID, author, nil},
					{http.MethodPut, "/editor/publish/id/" + a.ID, editor, nil},
					{http.MethodPut, "/author", author, map[string]any{"_id": a.ID, "title": "Quantum title " + string(rune('A'+i))}},
					{http.MethodPut, "/editor/unpublish/id/" + a.ID, editor, nil},
					{http.MethodPut, "/author/submit/id/" + b.ID, author, nil},
					{http.MethodPut, "/author/withdraw/id/" + b.ID, author, nil},
				} {
					app.Do(t, s.m, s.p, s.tok, s.body)
					c.check(t, s.p)
				}
			}
			m := app.Runtime.Metrics.CacheLookups
			t.Logf("hit %v miss %v error %v", testutil.ToFloat64(m.WithLabelValues("blog", "hit")), testutil.ToFloat64(m.WithLabelValues("blog", "miss")), testutil.ToFloat64(m.WithLabelValues("blog", "error")))
		})
	}
}
