package pkcs11

import (
	"errors"

	"github.com/miekg/pkcs11"
)

var (
	// ErrPIN means the token refused the PIN (incorrect, locked, expired
	// or of a length it does not accept). The server must not start.
	ErrPIN = errors.New("pkcs11: the token refused the PIN")
	// ErrModule means the PKCS#11 library could not be loaded or
	// initialised.
	ErrModule = errors.New("pkcs11: module")
	// ErrUnsafeModule means the PKCS#11 library was refused before it was
	// loaded: it is not a regular file, or it, or a directory above it,
	// is not owned by root or is writable by group or others. Whoever can
	// replace the library runs code in the process that holds the PIN.
	ErrUnsafeModule = errors.New("pkcs11: module refused")
	// ErrModuleInUse means the library was already initialised in this
	// process. PKCS#11 login and finalisation are per process, so a
	// module is opened by one Provider, which serves all its keys.
	ErrModuleInUse = errors.New("pkcs11: the module is already initialised in this process (open one Provider per module and share it)")
	// ErrTokenNotFound means no slot holds the configured token.
	ErrTokenNotFound = errors.New("pkcs11: token not found")
	// ErrTokenUnavailable is returned by an operation when the token
	// stayed unreachable (removed, or the module reports it gone) through
	// every reconnection the call was allowed. The provider keeps
	// trying on later calls and works again once the token is back.
	ErrTokenUnavailable = errors.New("pkcs11: token unavailable")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("pkcs11: provider closed")
	// ErrExists means Generate found an object with the label or ID asked for.
	ErrExists = errors.New("pkcs11: an object with that label or ID already exists in the token")
	// ErrNotFound means no key matched a label or ID.
	ErrNotFound = errors.New("pkcs11: no such key in the token")
	// ErrAmbiguous means a label or ID matched more than one key.
	ErrAmbiguous = errors.New("pkcs11: more than one key matches")
	// ErrUnsafeKey means a key exists but is not one this provider adopts:
	// it can be extracted, is not sensitive, cannot sign (or encrypt, for
	// a KEK), or its public key object does not match it.
	ErrUnsafeKey = errors.New("pkcs11: key refused")
	// ErrUnsupported means an algorithm, hash or signature scheme this
	// provider (or the token) does not do.
	ErrUnsupported = errors.New("pkcs11: unsupported")
	// ErrOpen means a sealed blob did not open: its ciphertext, IV or
	// additional data was altered, or it was sealed under another KEK.
	ErrOpen = errors.New("pkcs11: KEK: the sealed data does not authenticate (altered, other additional data, or another KEK)")
	// ErrMalformed means a sealed blob is not in a format this package writes.
	ErrMalformed = errors.New("pkcs11: KEK: malformed sealed data")
)

// tokenLost are the return values after which the provider reconnects:
// the session or the login is gone, or the token is. A handle that became
// invalid is among them: a token that went away and came back (SoftHSM2
// answers CKR_OBJECT_HANDLE_INVALID while its token directory is gone) no
// longer knows the handles it gave out. CKR_GENERAL_ERROR is ambiguous
// (SoftHSM2 also answers it for a GCM tag that does not verify), so it
// counts only when the session or the token no longer answer
// (session.lost).
var tokenLost = map[pkcs11.Error]bool{
	pkcs11.CKR_SESSION_HANDLE_INVALID:   true,
	pkcs11.CKR_SESSION_CLOSED:           true,
	pkcs11.CKR_DEVICE_REMOVED:           true,
	pkcs11.CKR_TOKEN_NOT_PRESENT:        true,
	pkcs11.CKR_TOKEN_NOT_RECOGNIZED:     true,
	pkcs11.CKR_USER_NOT_LOGGED_IN:       true,
	pkcs11.CKR_DEVICE_ERROR:             true,
	pkcs11.CKR_SLOT_ID_INVALID:          true,
	pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED: true,
	pkcs11.CKR_OBJECT_HANDLE_INVALID:    true,
	pkcs11.CKR_KEY_HANDLE_INVALID:       true,
	pkcs11.CKR_GENERAL_ERROR:            true,
}

// errLost marks the error of a call made while the provider had no
// working connection to the token, so the caller reconnects.
var errLost = errors.New("pkcs11: not connected to the token")

// lostErr reports whether err, from a call that had no session yet,
// calls for a reconnection.
func lostErr(err error) bool {
	if errors.Is(err, errLost) {
		return true
	}
	var rv pkcs11.Error
	return errors.As(err, &rv) && tokenLost[rv]
}

// lost reports whether err, returned by a call on s, calls for a
// reconnection.
func (s session) lost(err error) bool {
	if !lostErr(err) {
		return false
	}
	if errors.Is(err, pkcs11.Error(pkcs11.CKR_GENERAL_ERROR)) {
		return !s.answers()
	}
	return true
}

// answers reports whether the session and its token still respond.
func (s session) answers() bool {
	if _, err := s.mod.GetSessionInfo(s.h); err != nil {
		return false
	}
	_, err := s.mod.GetTokenInfo(s.slot)
	return err == nil
}

// pinError reports whether rv is the token refusing the PIN.
func pinError(rv pkcs11.Error) bool {
	switch rv {
	case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE,
		pkcs11.CKR_PIN_EXPIRED, pkcs11.CKR_PIN_LOCKED:
		return true
	}
	return false
}
