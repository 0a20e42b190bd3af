package deploycheck

import (
	"context"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"blogplatform/tools/internal/platform"
)

// composeRedisUsers returns the ACL users the redis service's command
// creates: user name -> the tokens after it (reset, on, >password, rules).
func composeRedisUsers(t *testing.T, command []string) map[string][]string {
	t.Helper()
	users := map[string][]string{}
	for i := 0; i < len(command); i++ {
		if command[i] != "--user" {
			continue
		}
		j := i + 1
		for j < len(command) && !strings.HasPrefix(command[j], "--") {
			j++
		}
		if j-i < 2 {
			t.Fatalf("redis command: --user without a name: %q", command)
		}
		users[command[i+1]] = command[i+2 : j]
		i = j - 1
	}
	return users
}

// TestComposeRedisACLUsers: each service has its own ACL user, created from
// its own password with exactly the local platform's rules, and the default
// user's password (health check, operators) is given to no service.
func TestComposeRedisACLUsers(t *testing.T) {
	passwords := map[string]string{"auth": composeEnv["REDIS_AUTH_PASSWORD"], "blog": composeEnv["REDIS_BLOG_PASSWORD"]}
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			project := mustLoadCompose(t, f.name)
			users := composeRedisUsers(t, project.Services["redis"].Command)
			if len(users) != 2 {
				t.Fatalf("redis users %v, want auth and blog", slices.Sorted(maps.Keys(users)))
			}
			for name, pw := range passwords {
				want := append([]string{"reset", "on", ">" + pw}, platform.RedisACL(name)...)
				if got := users[name]; !slices.Equal(got, want) {
					t.Errorf("redis user %s: %q\nwant (the local platform's rules) %q", name, got, want)
				}
			}
			for _, name := range f.appServices() {
				if envOf(project.Services[name])["REDIS_PASSWORD"] == composeEnv["REDIS_PASSWORD"] {
					t.Errorf("%s gets the default user's REDIS_PASSWORD", name)
				}
			}
		})
	}
	// Each password is required, like every other secret.
	for _, missing := range []string{"REDIS_AUTH_PASSWORD", "REDIS_BLOG_PASSWORD"} {
		env := map[string]string{}
		for k, v := range composeEnv {
			if k != missing {
				env[k] = v
			}
		}
		if _, err := loadCompose(t, "docker-compose.yml", env); err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("compose without %s: err = %v, want one naming it", missing, err)
		}
	}
}

// redisCallPattern finds the commands Lua scripts run.
var redisCallPattern = regexp.MustCompile(`redis\.call\(\s*'([A-Za-z]+)'`)

// goRedisCommands maps the go-redis client methods the services call to the
// commands they send (Script.Run sends EVALSHA, then EVAL when the script
// is not cached yet; a pipeline sends only the commands queued on it, which
// are matched on pipe).
var goRedisCommands = map[string][]string{
	"Get": {"get"}, "MGet": {"mget"}, "Set": {"set"}, "SetNX": {"set", "setnx"},
	"Del": {"del"}, "Ping": {"ping"}, "Run": {"evalsha", "eval"}, "Pipeline": {}, "Exec": {},
}

var goRedisCallPattern = regexp.MustCompile(`(?:rdb|pipe|Client\(\)|gcra|attempt|undo|invalidate|unlock|setIfGeneration|readVersioned)\.([A-Z][A-Za-z]*)\(`)

// TestRedisACLCoversTheCode reads the Redis calls of each service's code
// (its own packages and the shared cache) and checks its ACL user may run
// every one: a command added to the code without the ACL would fail only
// in a deployment, silently (the cache falls back to the store).
func TestRedisACLCoversTheCode(t *testing.T) {
	root := repoRoot(t)
	for _, service := range []string{"auth", "blog"} {
		granted := map[string]bool{}
		for _, rule := range platform.RedisACL(service) {
			if c, ok := strings.CutPrefix(rule, "+"); ok {
				granted[c] = true
			}
		}
		used := map[string]string{} // command -> where
		for _, dir := range []string{service + "_service", "chassis/cache"} {
			err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
					strings.Contains(path, "testkit") {
					return err
				}
				raw, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(root, path)
				for _, m := range redisCallPattern.FindAllStringSubmatch(string(raw), -1) {
					used[strings.ToLower(m[1])] = rel
				}
				for _, m := range goRedisCallPattern.FindAllStringSubmatch(string(raw), -1) {
					cmds, ok := goRedisCommands[m[1]]
					if !ok {
						t.Errorf("%s: go-redis call %s: add it to goRedisCommands and the ACL", rel, m[0])
					}
					for _, c := range cmds {
						used[c] = rel
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(used) < 5 {
			t.Fatalf("%s: found only %v; the patterns no longer match the code", service, used)
		}
		t.Logf("%s runs %v", service, slices.Sorted(maps.Keys(used)))
		for c, where := range used {
			if !granted[c] {
				t.Errorf("%s's code runs %s (%s) but its Redis ACL user may not", service, strings.ToUpper(c), where)
			}
		}
	}
}

// TestComposeRedisACLWithRedisServer starts redis-server with the compose
// file's own arguments and checks what each service user may do: its own
// keys with every granted command (scripts included), nothing of the other
// service's keys, no administrative commands.
func TestComposeRedisACLWithRedisServer(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not on PATH (apt-get install -y redis-server); the ACL rules need the real server")
	}
	project := mustLoadCompose(t, "docker-compose.yml")
	args := slices.Clone([]string(project.Services["redis"].Command))
	if args[0] != "redis-server" {
		t.Fatalf("redis command %q", args)
	}
	port := freeTCPPort(t)
	args = append(args[1:], "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", t.TempDir(), "--save", "", "--loglevel", "warning")
	cmd := exec.Command(bin, args...)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	client := func(user, password string, db int) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr, Username: user, Password: password, DB: db, MaxRetries: -1, DisableIdentity: true})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	admin := client("", composeEnv["REDIS_PASSWORD"], 0)
	for admin.Ping(ctx).Err() != nil {
		select {
		case <-ctx.Done():
			t.Fatalf("redis-server with the compose arguments did not start: %s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Services select a database (the local platform gives blog db 2).
	auth := client("auth", composeEnv["REDIS_AUTH_PASSWORD"], 0)
	blog := client("blog", composeEnv["REDIS_BLOG_PASSWORD"], 2)

	// Every granted command works on the service's own keys, called the way
	// the services call them (directly and from Lua scripts).
	authScript := redis.NewScript(`
local t = redis.call('TIME')
redis.call('SET', KEYS[1], t[1], 'PX', 60000)
redis.call('INCR', KEYS[2]); redis.call('DECR', KEYS[2]); redis.call('INCR', KEYS[2])
if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], 60000) end
redis.call('SADD', KEYS[3], KEYS[1])
local m = redis.call('SMEMBERS', KEYS[3])
redis.call('DEL', KEYS[3])
return redis.call('GET', KEYS[2])`)
	blogScript := redis.NewScript(`
redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], 'v', 'PX', 60000)
redis.call('SADD', KEYS[3], KEYS[2])
local m = redis.call('SMEMBERS', KEYS[3])
if redis.call('PTTL', KEYS[3]) < 0 then redis.call('PEXPIRE', KEYS[3], 60000) end
redis.call('DEL', KEYS[3])
return redis.call('GET', ARGV[1] .. 'x')`)
	allowed := []struct {
		name string
		run  func() error
	}{
		{"auth set/get/mget/setnx/del", func() error {
			return firstErr(auth.Set(ctx, "auth_session_x", "1", time.Minute).Err(), auth.Get(ctx, "auth_session_x").Err(),
				auth.MGet(ctx, "auth_user_{1}", "auth_user_gen:{1}", "auth_session_x").Err(), auth.SetNX(ctx, "auth_apikey_x", "1", time.Minute).Err(),
				auth.SetNX(ctx, "auth_apikey_y", "1", 0).Err(), auth.Del(ctx, "auth_apikey_y").Err(), auth.Ping(ctx).Err())
		}},
		{"auth script", func() error {
			return authScript.Run(ctx, auth, []string{"auth_ratelimit_x", "auth_signin_attempts_x", "auth_track"}).Err()
		}},
		{"blog set/get/mget/setnx/del", func() error {
			return firstErr(blog.Set(ctx, "blog_x", "1", time.Minute).Err(), blog.Get(ctx, "blog_x").Err(),
				blog.MGet(ctx, "blog_x", "blogcache:slug:x").Err(), blog.SetNX(ctx, "blogcache:lock:x", "t", time.Minute).Err(),
				blog.Del(ctx, "blogcache:lock:x").Err(), blog.Ping(ctx).Err())
		}},
		{"blog script", func() error {
			// Key names as the cache writes them (hash tags included).
			err := blogScript.Run(ctx, blog, []string{"blogcache:gen:{blog_x}", "blogcache:ver:{public-0}", "blogcache:track"}, "blogcache:latest:{public-0}:").Err()
			if err == redis.Nil {
				return nil
			}
			return err
		}},
	}
	for _, a := range allowed {
		if err := a.run(); err != nil {
			t.Errorf("%s: %v", a.name, err)
		}
	}

	denied := []struct {
		name string
		c    *redis.Client
		cmd  []any
	}{
		{"auth writes a blog entry", auth, []any{"set", "blog_x", "1"}},
		{"auth writes a blog cache key", auth, []any{"set", "blogcache:x", "1"}},
		{"blog reads an auth session", blog, []any{"get", "auth_session_x"}},
		{"blog writes an auth session", blog, []any{"set", "auth_session_x", "forged"}},
		{"blog writes a cached user", blog, []any{"set", "auth_user_{1}", "{}"}},
		{"blog's script writes an auth key", blog, []any{"eval", "return redis.call('SET', 'auth_session_x', 'forged')", "0"}},
		{"blog deletes an auth key", blog, []any{"del", "auth_session_x"}},
		{"blog flushes everything", blog, []any{"flushall"}},
		{"blog flushes its database", blog, []any{"flushdb"}},
		{"blog lists keys", blog, []any{"keys", "*"}},
		// SCAN is granted: the failover guard behind Sentinel discards the
		// service's own keys with it (Redis 7 does not limit SCAN by key
		// pattern; the values stay protected, as the cases above show).
		{"blog reads the configuration", blog, []any{"config", "get", "*"}},
		{"blog changes ACLs", blog, []any{"acl", "setuser", "blog", "~*"}},
		{"auth flushes everything", auth, []any{"flushall"}},
		{"auth reads the configuration", auth, []any{"config", "get", "*"}},
	}
	for _, d := range denied {
		err := d.c.Do(ctx, d.cmd...).Err()
		if err == nil || !strings.Contains(err.Error(), "NOPERM") && !strings.Contains(err.Error(), "can't access") {
			t.Errorf("%s: err = %v, want a permission error", d.name, err)
		}
	}
	if v, err := client("", composeEnv["REDIS_PASSWORD"], 0).Get(ctx, "auth_session_x").Result(); err != nil || v != "1" {
		t.Errorf("auth_session_x = %q, %v after blog's attempts; want auth's 1", v, err)
	}
	// The default user still answers the health check.
	if err := admin.Ping(ctx).Err(); err != nil {
		t.Errorf("health check as the default user: %v", err)
	}
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil && err != redis.Nil {
			return err
		}
	}
	return nil
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
