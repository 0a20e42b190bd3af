package natsx

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"blogplatform/chassis/apperr"
	"blogplatform/chassis/authwire"
)

// FuzzServeEnvelope feeds arbitrary bytes to the request path every endpoint
// shares (envelope decoding, typed decoding, Validate, the handler): whatever
// arrives, the reply is an envelope with either data or a "<status>:…" error,
// and never a 5xx for input that merely is malformed.
func FuzzServeEnvelope(f *testing.F) {
	for _, name := range authwire.FixtureNames() {
		f.Add(authwire.Fixture(name))
	}
	for _, seed := range []string{``, `{}`, `null`, `[]`, `{"data":null}`, `{"data":{"user":null}}`,
		`{"data":{"user":{"_id":5}}}`, `{"data":{"value":["x"]}}`, `{"data":"str"}`, `{"data":{"roles":[1,2]}}`,
		`{"data":{"value":"` + strings.Repeat("a", 4096) + `"}}`, "\xff\xfe", `{"data":{"value":"\u0000"}}`} {
		f.Add([]byte(seed))
	}
	s := &Service{opts: ServiceOptions{Logger: slog.New(slog.DiscardHandler)}}
	handlers := map[string]HandlerFunc{
		"text": Typed(func(ctx context.Context, r authwire.Text) (authwire.User, error) {
			return authwire.User{ID: r.Value}, nil
		}),
		"authorization": Typed(func(ctx context.Context, r authwire.AuthorizationRequest) (authwire.User, error) {
			if r.User == nil {
				return authwire.User{}, apperr.BadRequest("user is required")
			}
			return *r.User, nil
		}),
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for name, h := range handlers {
			reply, _ := s.run(context.Background(), "auth."+name, payload, h)
			var m Message
			if err := json.Unmarshal(reply, &m); err != nil {
				t.Fatalf("%s: reply is not an envelope: %q", name, reply)
			}
			if (m.Error == "") == (len(m.Data) == 0) {
				t.Fatalf("%s: reply must carry exactly one of data and error: %s", name, reply)
			}
			if m.Error != "" {
				e, ok := apperr.ParseWire(m.Error)
				if !ok || e.Status() >= 500 {
					t.Fatalf("%s: malformed input answered %q", name, m.Error)
				}
			}
		}
	})
}
