package embedded

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// aclUsers are two users shaped like the platform's: each may touch only its
// own key prefix and a few commands.
var aclUsers = []RedisUser{
	{Name: "svc_a", Password: "pw a \"quoted\"", Rules: []string{"~a_*", "+ping", "+select", "+get", "+set", "+eval", "+evalsha", "+time"}},
	{Name: "svc_b", Password: "pw-b", Rules: []string{"~b_*", "~bc:*", "+ping", "+get", "+set"}},
}

func userClient(t *testing.T, r *Redis, user, password string, db int) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), Username: user, Password: password, DB: db, MaxRetries: -1, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRedisACLUsers(t *testing.T) {
	for _, mode := range redisModes {
		t.Run(mode.name, func(t *testing.T) {
			r := startRedis(t, RedisOptions{Password: "admin", Users: aclUsers, ForceStandIn: mode.forceStandIn})
			checkKind(t, r, mode.forceStandIn)
			ctx := context.Background()
			a := userClient(t, r, "svc_a", aclUsers[0].Password, 1)
			b := userClient(t, r, "svc_b", aclUsers[1].Password, 0)

			// Every user works within its rules in both modes (SELECT included).
			if err := a.Set(ctx, "a_key", "1", 0).Err(); err != nil {
				t.Fatalf("svc_a SET a_key: %v", err)
			}
			if err := b.Set(ctx, "bc:key", "1", 0).Err(); err != nil {
				t.Fatalf("svc_b SET bc:key: %v", err)
			}
			// A script calling TIME, GET and SET on the user's own keys.
			script := redis.NewScript(`local t = redis.call('TIME'); redis.call('SET', KEYS[1], t[1]); return redis.call('GET', KEYS[1])`)
			if err := script.Run(ctx, a, []string{"a_clock"}).Err(); err != nil {
				t.Fatalf("svc_a script: %v", err)
			}
			if err := userClient(t, r, "svc_a", "wrong", 0).Ping(ctx).Err(); err == nil {
				t.Fatal("a wrong password was accepted")
			}

			if !r.ACLEnforced() {
				if !r.IsStandIn() {
					t.Fatal("ACLEnforced false for the real server")
				}
				t.Log("stand-in: passwords checked, ACL rules not enforced (as documented)")
				return
			}
			denied := []struct {
				name string
				c    *redis.Client
				cmd  []any
			}{
				{"a writes b's key", a, []any{"set", "b_x", "1"}},
				{"a writes b's other prefix", a, []any{"set", "bc:x", "1"}},
				{"a's script writes b's key", a, []any{"eval", "return redis.call('SET', 'b_x', '1')", "0"}},
				{"b reads a's key", b, []any{"get", "a_key"}},
				{"b writes a's key", b, []any{"set", "a_key", "2"}},
				{"b flushes", b, []any{"flushall"}},
				{"b lists keys", b, []any{"keys", "*"}},
				{"b reconfigures", b, []any{"config", "set", "requirepass", ""}},
				{"b runs a command it was not granted", b, []any{"del", "b_x"}},
			}
			for _, d := range denied {
				err := d.c.Do(ctx, d.cmd...).Err()
				if err == nil || !strings.Contains(strings.ToUpper(err.Error()), "NOPERM") &&
					!strings.Contains(err.Error(), "can't access") {
					t.Errorf("%s: err = %v, want a permission error", d.name, err)
				}
			}
			admin := userClient(t, r, "", r.Password(), 1) // svc_a's database
			if v, err := admin.Get(ctx, "a_key").Result(); err != nil || v != "1" {
				t.Errorf("a_key = %q, %v after the denied writes; want 1", v, err)
			}
		})
	}
}

func TestRedisUserValidation(t *testing.T) {
	for _, u := range []RedisUser{{Password: "x"}, {Name: "default", Password: "x"}, {Name: "u"}} {
		if r, err := StartRedis(RedisOptions{Users: []RedisUser{u}, ForceStandIn: true}); err == nil {
			_ = r.Close()
			t.Errorf("user %+v accepted", u)
		}
	}
}

func TestRedisACLLineQuotesEveryToken(t *testing.T) {
	got := RedisUser{Name: "u", Password: "p \"x\"", Rules: []string{"~k_*", "+get"}}.aclLine()
	want := `user "u" "reset" "on" ">p \"x\"" "~k_*" "+get"`
	if got != want {
		t.Errorf("aclLine = %s, want %s", got, want)
	}
}
