package user

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/auth_service/api/user/model"
	"blogplatform/chassis/cache"
	"blogplatform/devkit/embedded"
)

// memStore is a Storer in memory: the rules of the service are tested
// without a database, against the behaviour the interface promises.
type memStore struct {
	users     []model.User
	roles     []model.Role
	conflicts map[string]model.EmailConflict
}

func (m *memStore) find(match func(model.User) bool) (*model.User, error) {
	for _, u := range m.users {
		if match(u) {
			return &u, nil
		}
	}
	return nil, model.ErrNotFound
}

func (m *memStore) ActiveByID(_ context.Context, id bson.ObjectID) (*model.User, error) {
	u, err := m.find(func(u model.User) bool { return u.ID == id && u.Status })
	if u != nil {
		u.Password = ""
	}
	return u, err
}

func (m *memStore) ActiveByEmail(_ context.Context, email string) (*model.User, error) {
	return m.find(func(u model.User) bool { return u.Email == email && u.Status })
}

func (m *memStore) ByEmail(_ context.Context, email string) (*model.User, error) {
	return m.find(func(u model.User) bool { return u.Email == email })
}

func (m *memStore) ActiveByIDs(_ context.Context, ids []bson.ObjectID) ([]model.User, error) {
	var out []model.User
	for _, u := range m.users {
		if u.Status && slices.Contains(ids, u.ID) {
			out = append(out, u)
		}
	}
	return out, nil
}

func (m *memStore) Insert(_ context.Context, u *model.User) error {
	if _, err := m.ByEmail(context.Background(), u.Email); err == nil {
		return model.ErrDuplicateEmail
	}
	u.ID = bson.NewObjectID()
	m.users = append(m.users, *u)
	return nil
}

func (m *memStore) AddRolesIfHolding(_ context.Context, email string, roleIDs []bson.ObjectID, required bson.ObjectID) (bool, error) {
	for i, u := range m.users {
		if u.Email == email && slices.Contains(u.Roles, required) {
			for _, id := range roleIDs {
				if !slices.Contains(u.Roles, id) {
					m.users[i].Roles = append(m.users[i].Roles, id)
				}
			}
			return true, nil
		}
	}
	return false, nil
}

func (m *memStore) ActiveRoles(_ context.Context, ids []bson.ObjectID) ([]model.Role, error) {
	var out []model.Role
	for _, r := range m.roles {
		if r.Status && slices.Contains(ids, r.ID) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memStore) ActiveRoleByCode(_ context.Context, code string) (*model.Role, error) {
	for _, r := range m.roles {
		if r.Code == code && r.Status {
			return &r, nil
		}
	}
	return nil, model.ErrNotFound
}

func (m *memStore) EnsureRole(_ context.Context, code string, now time.Time) (*model.Role, error) {
	for _, r := range m.roles {
		if r.Code == code {
			return &r, nil
		}
	}
	r := model.Role{ID: bson.NewObjectID(), Code: code, Status: true, CreatedAt: now, UpdatedAt: now}
	m.roles = append(m.roles, r)
	return &r, nil
}

func (m *memStore) EmailsToNormalize(context.Context) ([]model.User, error) {
	var out []model.User
	for _, u := range m.users {
		if model.NormalizeEmail(u.Email) != u.Email {
			out = append(out, model.User{ID: u.ID, Email: u.Email})
		}
	}
	return out, nil
}

func (m *memStore) EmailsLike(_ context.Context, norm string) ([]model.User, error) {
	var out []model.User
	for _, u := range m.users {
		if strings.EqualFold(strings.TrimSpace(u.Email), norm) {
			out = append(out, model.User{ID: u.ID, Email: u.Email})
		}
	}
	return out, nil
}

func (m *memStore) ReplaceEmail(_ context.Context, id bson.ObjectID, from, to string, now time.Time) error {
	if _, err := m.ByEmail(context.Background(), to); err == nil {
		return model.ErrDuplicateEmail
	}
	for i, u := range m.users {
		if u.ID == id && u.Email == from {
			m.users[i].Email, m.users[i].UpdatedAt = to, now
		}
	}
	return nil
}

func (m *memStore) SaveConflict(_ context.Context, c *model.EmailConflict) error {
	m.conflicts[c.Email] = *c
	return nil
}

func (m *memStore) DropConflictsExcept(_ context.Context, keep []string) error {
	for email := range m.conflicts {
		if !slices.Contains(keep, email) {
			delete(m.conflicts, email)
		}
	}
	return nil
}

func (m *memStore) Conflict(_ context.Context, email string) (*model.EmailConflict, error) {
	if c, ok := m.conflicts[email]; ok {
		return &c, nil
	}
	return nil, nil
}

func newTestService(t *testing.T, store Storer) *Service {
	t.Helper()
	r, err := embedded.StartRedis(embedded.RedisOptions{ForceStandIn: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return NewService(store, cache.New(rdb, "test", slog.New(slog.DiscardHandler), nil), Options{CacheTTL: time.Minute})
}

// TestEnsureUserGrantsRolesOnlyToTheAdmin: the bootstrap creates the admin
// when the email is free, completes the roles of an account that already
// holds ADMIN (also when it loses an insert race), and leaves any other
// account with that email alone.
func TestEnsureUserGrantsRolesOnlyToTheAdmin(t *testing.T) {
	const email = "admin@example.com"
	tests := []struct {
		name        string
		existing    func(admin, learner bson.ObjectID) []model.User
		insertRace  bool // someone inserts the email between the look-up and the insert
		wantErr     error
		wantHashed  bool
		wantAllRole bool
	}{
		{"free email: created", func(_, _ bson.ObjectID) []model.User { return nil }, false, nil, true, true},
		{"existing admin: roles completed", func(admin, _ bson.ObjectID) []model.User {
			return []model.User{{ID: bson.NewObjectID(), Email: email, Roles: []bson.ObjectID{admin}, Status: true}}
		}, false, nil, false, true},
		{"someone else's account: untouched", func(_, learner bson.ObjectID) []model.User {
			return []model.User{{ID: bson.NewObjectID(), Email: email, Roles: []bson.ObjectID{learner}, Status: true}}
		}, false, ErrNotAdmin, false, false},
		{"lost insert race to a sign-up: untouched", func(_, _ bson.ObjectID) []model.User { return nil }, true, ErrNotAdmin, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &memStore{conflicts: map[string]model.EmailConflict{}}
			s := newTestService(t, store)
			roles, err := s.EnsureRoles(t.Context(), model.AllRoles)
			if err != nil {
				t.Fatal(err)
			}
			ids := make([]bson.ObjectID, len(roles))
			for i, r := range roles {
				ids[i] = r.ID
			}
			admin, learner := roles[3].ID, roles[0].ID
			store.users = tt.existing(admin, learner)
			hashed := false
			hash := func() (string, error) {
				hashed = true
				if tt.insertRace {
					store.users = append(store.users, model.User{ID: bson.NewObjectID(), Email: email, Roles: []bson.ObjectID{learner}, Status: true})
				}
				return "hash", nil
			}
			if err := s.EnsureUser(t.Context(), email, "Admin", hash, ids, admin); !errors.Is(err, tt.wantErr) {
				t.Fatalf("EnsureUser = %v, want %v", err, tt.wantErr)
			}
			if hashed != tt.wantHashed {
				t.Errorf("password hashed: %v, want %v", hashed, tt.wantHashed)
			}
			u, err := store.ByEmail(t.Context(), email)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(u.Roles) == len(ids); got != tt.wantAllRole {
				t.Errorf("account roles %v, want all four: %v", u.Roles, tt.wantAllRole)
			}
		})
	}
}

// TestMigrateEmailsNormalisesOrRecordsConflicts: an email alone in its
// normal form is rewritten; accounts that differ only by case are recorded
// as a conflict and left as they are; a conflict resolved since is dropped.
func TestMigrateEmailsNormalisesOrRecordsConflicts(t *testing.T) {
	store := &memStore{conflicts: map[string]model.EmailConflict{
		"old@example.com": {Email: "old@example.com"}, // resolved since
	}}
	for _, e := range []string{" Ada@Example.com", "bob@example.com", "Carl@example.com", "carl@example.com"} {
		store.users = append(store.users, model.User{ID: bson.NewObjectID(), Email: e, Status: true})
	}
	s := newTestService(t, store)
	report, err := s.MigrateEmails(t.Context(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if report.Normalized != 1 || len(report.Conflicts) != 1 || report.Conflicts[0].Email != "carl@example.com" {
		t.Fatalf("report %+v", report)
	}
	var emails []string
	for _, u := range store.users {
		emails = append(emails, u.Email)
	}
	if want := []string{"ada@example.com", "bob@example.com", "Carl@example.com", "carl@example.com"}; !slices.Equal(emails, want) {
		t.Errorf("emails %q, want %q", emails, want)
	}
	if _, ok := store.conflicts["old@example.com"]; ok || len(store.conflicts) != 1 {
		t.Errorf("conflicts %v, want only carl@example.com", store.conflicts)
	}
	if c, _ := s.ConflictOf(t.Context(), "carl@example.com"); c == nil || len(c.UserIDs) != 2 {
		t.Errorf("ConflictOf = %+v", c)
	}
}
