// Package authz owns who may do what: principals, roles and API tokens.
// Issue 4 extends it with scoped permissions; for now every authenticated
// principal holds one role.
package authz

import "time"

// Role names what a principal may do.
type Role string

// Roles.
const (
	RoleAdmin Role = "admin"
)

// Principal is an authenticated caller.
type Principal struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
}

// Token is an API bearer token as stored: only a hash of its secret is kept.
// The token string handed to a user is "cwt_<ID>_<secret>".
type Token struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Role       Role      `json:"role"`
	SecretHash []byte    `json:"-"` // SHA-256 of the secret part
	CreatedAt  time.Time `json:"created_at"`
}
