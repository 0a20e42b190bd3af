// Package dto holds the auth payloads of the HTTP API (sign-up, sign-in,
// token refresh). Stage-1 `binding` tags and stage-2 `validate` tags are the
// reference's rules; the messages use the chassis default wording ("must be
// at least 6 characters").
package dto

import (
	"encoding/json"

	"blogplatform/auth_service/api/auth/token"
	userdto "blogplatform/auth_service/api/user/dto"
	"blogplatform/auth_service/api/user/model"
	"blogplatform/chassis/httpx"
)

// Email is an email address in its normal form (model.NormalizeEmail):
// decoding trims and lower-cases it, so validation, storage and lookups all
// see one form, and "Ada@Example.com " signs in to ada@example.com.
type Email string

func (e *Email) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err // a type error; the decoder adds the field name
	}
	*e = Email(model.NormalizeEmail(s))
	return nil
}

type SignUpBasic struct {
	Email    Email  `json:"email" binding:"required" validate:"required,email"`
	Password string `json:"password" binding:"required" validate:"required,min=6,max=100"`
	Name     string `json:"name" binding:"required" validate:"required,min=2,max=200"`
	// An explicit "" is checked (and fails) like the reference; only an
	// absent or null value skips the check. Only an absolute http or https
	// URL is accepted: a javascript: or data: URL would be stored XSS for
	// any client that renders the picture. A value that is no URI at all
	// keeps the reference's message (see signUpStyle).
	ProfilePicURL *string `json:"profilePicUrl,omitempty" validate:"omitempty,uri,http_url,max=500"`
}

// signUpStyle is the auth wording, with the reference's "is not a valid
// URL" for a value that is no URI at all and a clear message for a URI
// that is not an absolute http(s) URL.
var signUpStyle = func() httpx.Style {
	s := httpx.DefaultStyle()
	s.URI = "%[1]s is not a valid URL"
	s.URL = "%[1]s must be an absolute http or https URL"
	return s
}()

func (SignUpBasic) ValidationStyle() httpx.Style { return signUpStyle }

type SignInBasic struct {
	Email    Email  `json:"email" binding:"required" validate:"required,email"`
	Password string `json:"password" binding:"required" validate:"required,min=6,max=100"`
}

type TokenRefresh struct {
	RefreshToken string `json:"refreshToken" binding:"required" validate:"required"`
}

// UserAuth is the data of a successful sign-up or sign-in.
type UserAuth struct {
	User   *userdto.InfoPrivateUser `json:"user"`
	Tokens token.Pair               `json:"tokens"`
}
