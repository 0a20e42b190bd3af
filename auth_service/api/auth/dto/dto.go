// Package dto holds the auth payloads of the HTTP API (§4.4–§4.6). Stage-1
// `binding` tags and stage-2 `validate` tags are the reference's rules; the
// messages use the chassis CharStyle ("must be at least 6 characters").
package dto

import (
	"blogplatform/auth_service/api/auth/token"
	userdto "blogplatform/auth_service/api/user/dto"
)

type SignUpBasic struct {
	Email    string `json:"email" binding:"required" validate:"required,email"`
	Password string `json:"password" binding:"required" validate:"required,min=6,max=100"`
	Name     string `json:"name" binding:"required" validate:"required,min=2,max=200"`
	// An explicit "" is checked (and fails url) like the reference; only an
	// absent or null value skips the check.
	ProfilePicURL *string `json:"profilePicUrl,omitempty" validate:"omitempty,url,max=500"`
}

type SignInBasic struct {
	Email    string `json:"email" binding:"required" validate:"required,email"`
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
