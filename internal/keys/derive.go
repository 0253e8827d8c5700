package keys

import (
	"encoding/hex"
	"fmt"
)

// Derivation names a secret the instance derives from its key-encryption
// key (for a KEK file: HKDF-SHA256, no salt, the name as info, 32 bytes).
// Every such secret is listed here, so that no two uses share a key and a
// KEK held in a hardware token (which derives in its own way) replaces all
// of them at once. Changing a name changes the key derived.
type Derivation string

// The instance's derived secrets.
const (
	// DeriveBus signs the replicas' notices (store.SetBusKey).
	DeriveBus Derivation = "certwright bus v1"
	// DeriveSSOState seals the console's sign-in state cookie
	// (oidc.NewSealer).
	DeriveSSOState Derivation = "certwright console sso pending key v1"
	// DeriveListCursor authenticates the API's list cursors.
	DeriveListCursor Derivation = "certwright api list cursor v1"
	// DeriveReplicaSettings keys the digests of the replicas' agreed
	// secret settings in the replica registry.
	DeriveReplicaSettings Derivation = "certwright replica settings v1"
	// DeriveBackupManifest authenticates backup bundles' manifests (the
	// backup package derives it from the KEK file itself, since restore
	// runs without a server).
	DeriveBackupManifest Derivation = "certwright backup manifest v1"
	// DeriveKEKID names the KEK without revealing it (KEKFingerprint):
	// the database records the fingerprint of the KEK its keys are
	// wrapped under, so a start with another KEK, or one half-way
	// through a rotation, is told apart from a damaged key.
	DeriveKEKID Derivation = "certwright kek id v1"
)

// Derivations lists every Derivation.
func Derivations() []Derivation {
	return []Derivation{DeriveBus, DeriveSSOState, DeriveListCursor, DeriveReplicaSettings, DeriveBackupManifest, DeriveKEKID}
}

// Validate reports whether d is one of Derivations.
func (d Derivation) Validate() error {
	for _, k := range Derivations() {
		if d == k {
			return nil
		}
	}
	return fmt.Errorf("keys: %q is not one of the instance's derived secrets", string(d))
}

// Deriver derives the instance's secrets from its KEK without handing the
// KEK out. The software provider implements it.
type Deriver interface {
	DeriveKey(d Derivation) ([]byte, error)
}

// KEKFingerprint names the KEK d holds: the first 16 bytes of its
// DeriveKEKID secret, in hex. It is safe to show, log and store: it is
// independent of every other derived secret and reveals nothing of the
// KEK.
func KEKFingerprint(d Deriver) (string, error) {
	k, err := d.DeriveKey(DeriveKEKID)
	if err != nil {
		return "", err
	}
	defer clear(k)
	return hex.EncodeToString(k[:16]), nil
}
