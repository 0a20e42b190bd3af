package user

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/auth_service/api/user/model"
	"blogplatform/chassis/mongox"
)

// EmailConflict is a set of stored accounts whose emails differ only by
// letter case or surrounding spaces. Normalising them would make one address
// name several accounts, and choosing one would hand its owner's account to
// whoever owns the other, so they are reported and left for an operator.
type EmailConflict struct {
	Email   string          `bson:"_id"` // the normalised address
	UserIDs []bson.ObjectID `bson:"users"`
	Stored  []string        `bson:"emails"` // the emails as stored
	SeenAt  time.Time       `bson:"seenAt"`
}

// EmailMigration is what MigrateEmails did.
type EmailMigration struct {
	Normalized int
	Conflicts  []EmailConflict
}

// notNormalized finds emails with an upper-case letter (any script) or
// surrounding white space, i.e. emails NormalizeEmail would change.
var notNormalized = bson.M{"$regex": `\p{Lu}|^\s|\s$`}

// MigrateEmails brings stored emails to their normal form (trimmed, lower
// case). It is idempotent and runs at every start, concurrently on every
// replica. An email whose normal form another account's email shares (they
// differ only by case) is not changed: the accounts are recorded as a
// conflict, logged, and sign-in refuses that address until an operator
// resolves it (renames or deletes one account; the next start then
// normalises the other and drops the record).
func (s *Service) MigrateEmails(ctx context.Context, log *slog.Logger) (EmailMigration, error) {
	var report EmailMigration
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	cur, err := s.users.Find(qctx, bson.M{"email": notNormalized}, options.Find().SetProjection(bson.M{"email": 1}))
	if err != nil {
		return report, fmt.Errorf("find emails to normalise: %w", err)
	}
	var candidates []model.User
	if err := cur.All(qctx, &candidates); err != nil {
		return report, fmt.Errorf("read emails to normalise: %w", err)
	}
	seen := map[string]bool{}
	for _, c := range candidates {
		norm := model.NormalizeEmail(c.Email)
		if norm == c.Email || seen[norm] {
			continue
		}
		seen[norm] = true
		conflict, err := s.normalizeGroup(ctx, norm)
		if err != nil {
			return report, err
		}
		if conflict != nil {
			report.Conflicts = append(report.Conflicts, *conflict)
			log.Warn("accounts whose emails differ only by letter case; none was changed and sign-in with this address is refused until an operator renames or removes all but one",
				"email", norm, "users", conflict.UserIDs, "stored", conflict.Stored)
			continue
		}
		report.Normalized++
	}
	// Conflicts resolved since the last run (nothing found above) go.
	keep := make([]string, 0, len(report.Conflicts))
	for _, c := range report.Conflicts {
		keep = append(keep, c.Email)
	}
	if _, err := s.conflicts.DeleteMany(qctx, bson.M{"_id": bson.M{"$nin": keep}}); err != nil {
		return report, fmt.Errorf("drop resolved email conflicts: %w", err)
	}
	if report.Normalized > 0 {
		log.Info("stored emails normalised (trimmed, lower case)", "count", report.Normalized)
	}
	return report, nil
}

// normalizeGroup handles every account whose email normalises to norm: a
// single one is renamed to norm; several are a conflict (returned, recorded).
func (s *Service) normalizeGroup(ctx context.Context, norm string) (*EmailConflict, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	same := bson.M{"email": bson.M{"$regex": `^\s*` + regexp.QuoteMeta(norm) + `\s*$`, "$options": "i"}}
	cur, err := s.users.Find(qctx, same, options.Find().SetProjection(bson.M{"email": 1}))
	if err != nil {
		return nil, fmt.Errorf("find accounts of %s: %w", norm, err)
	}
	var group []model.User
	if err := cur.All(qctx, &group); err != nil {
		return nil, fmt.Errorf("read accounts of %s: %w", norm, err)
	}
	group = slices.DeleteFunc(group, func(u model.User) bool { return model.NormalizeEmail(u.Email) != norm })
	if len(group) == 1 {
		u := group[0]
		if u.Email == norm {
			return nil, nil
		}
		_, err := s.users.UpdateOne(qctx, bson.M{"_id": u.ID, "email": u.Email}, bson.M{"$set": bson.M{"email": norm, "updatedAt": time.Now().UTC()}})
		switch {
		case err == nil:
			s.Forget(ctx, u.ID.Hex())
			return nil, nil
		case !mongox.IsDuplicateKey(err):
			return nil, fmt.Errorf("normalise email of %s: %w", u.ID.Hex(), err)
		}
		// An account with the normal form appeared meanwhile (a sign-up):
		// that is a conflict too.
		var other model.User
		if err := s.users.FindOne(qctx, bson.M{"email": norm}).Decode(&other); err != nil {
			return nil, fmt.Errorf("find account of %s: %w", norm, err)
		}
		group = append(group, other)
	}
	if len(group) == 0 {
		return nil, nil
	}
	c := &EmailConflict{Email: norm, SeenAt: time.Now().UTC()}
	for _, u := range group {
		c.UserIDs = append(c.UserIDs, u.ID)
		c.Stored = append(c.Stored, u.Email)
	}
	if _, err := s.conflicts.ReplaceOne(qctx, bson.M{"_id": norm}, c, options.Replace().SetUpsert(true)); err != nil && !mongox.IsDuplicateKey(err) {
		return nil, fmt.Errorf("record email conflict %s: %w", norm, err)
	}
	return c, nil
}

// ConflictOf returns the recorded conflict of a normalised email, or nil.
func (s *Service) ConflictOf(ctx context.Context, email string) (*EmailConflict, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var c EmailConflict
	if err := s.conflicts.FindOne(qctx, bson.M{"_id": email}).Decode(&c); err != nil {
		if mongox.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("find email conflict: %w", err)
	}
	return &c, nil
}

// ActiveByIDs returns the active users among ids, passwords included.
func (s *Service) ActiveByIDs(ctx context.Context, ids []bson.ObjectID) ([]model.User, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	cur, err := s.users.Find(qctx, bson.M{"_id": bson.M{"$in": ids}, "status": true})
	if err != nil {
		return nil, fmt.Errorf("find users: %w", err)
	}
	var out []model.User
	if err := cur.All(qctx, &out); err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	return out, nil
}
