//go:build !cgo

package ceremony

// newPKCS11Key refuses: this build cannot load a PKCS#11 module.
func newPKCS11Key(PKCS11Options) (KeySource, error) { return nil, ErrNoPKCS11 }
