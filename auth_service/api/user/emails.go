package user

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"blogplatform/auth_service/api/user/model"
)

// EmailMigration is what MigrateEmails did.
type EmailMigration struct {
	Normalized int
	Conflicts  []model.EmailConflict
}

// MigrateEmails brings stored emails to their normal form (trimmed, lower
// case). It is idempotent and runs at every start, concurrently on every
// replica. An email whose normal form another account's email shares (they
// differ only by case) is not changed: the accounts are recorded as a
// conflict, logged, and sign-in refuses that address until an operator
// resolves it (renames or deletes one account; the next start then
// normalises the other and drops the record).
func (s *Service) MigrateEmails(ctx context.Context, log *slog.Logger) (EmailMigration, error) {
	var report EmailMigration
	candidates, err := s.store.EmailsToNormalize(ctx)
	if err != nil {
		return report, err
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
	if err := s.store.DropConflictsExcept(ctx, keep); err != nil {
		return report, err
	}
	if report.Normalized > 0 {
		log.Info("stored emails normalised (trimmed, lower case)", "count", report.Normalized)
	}
	return report, nil
}

// normalizeGroup handles every account whose email normalises to norm: a
// single one is renamed to norm; several are a conflict (returned, recorded).
func (s *Service) normalizeGroup(ctx context.Context, norm string) (*model.EmailConflict, error) {
	group, err := s.store.EmailsLike(ctx, norm)
	if err != nil {
		return nil, err
	}
	group = slices.DeleteFunc(group, func(u model.User) bool { return model.NormalizeEmail(u.Email) != norm })
	if len(group) == 1 {
		u := group[0]
		if u.Email == norm {
			return nil, nil
		}
		err := s.store.ReplaceEmail(ctx, u.ID, u.Email, norm, time.Now().UTC())
		switch {
		case err == nil:
			_ = s.Forget(ctx, u.ID.Hex()) // a snapshot left behind expires within AUTH_CACHE_TTL
			return nil, nil
		case !errors.Is(err, model.ErrDuplicateEmail):
			return nil, err
		}
		// An account with the normal form appeared meanwhile (a sign-up):
		// that is a conflict too.
		other, err := s.store.ByEmail(ctx, norm)
		if err != nil {
			return nil, err
		}
		group = append(group, *other)
	}
	if len(group) == 0 {
		return nil, nil
	}
	c := &model.EmailConflict{Email: norm, SeenAt: time.Now().UTC()}
	for _, u := range group {
		c.UserIDs = append(c.UserIDs, u.ID)
		c.Stored = append(c.Stored, u.Email)
	}
	if err := s.store.SaveConflict(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// ConflictOf returns the recorded conflict of a normalised email, or nil.
func (s *Service) ConflictOf(ctx context.Context, email string) (*model.EmailConflict, error) {
	return s.store.Conflict(ctx, email)
}
