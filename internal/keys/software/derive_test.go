package software_test

import (
	"encoding/hex"
	"testing"

	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/software"
)

// TestDeriveKeyKnownAnswers pins every derived secret for one KEK
// (HKDF-SHA256, no salt, the derivation's name as info, as each was
// derived before they were gathered in keys.Derivations): a changed name
// or algorithm would make replicas of two versions reject each other's
// notices and settings digests, and open no sealed cookie or backup.
func TestDeriveKeyKnownAnswers(t *testing.T) {
	t.Parallel()
	kek := make([]byte, software.KEKSize)
	for i := range kek {
		kek[i] = byte(i)
	}
	p, err := software.New(kek, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[keys.Derivation]string{
		keys.DeriveBus:             "809146a692a90817ddc6e56feddd6044c3842dfd08f293e1b49e09c830b8a67f",
		keys.DeriveSSOState:        "b43f903fea367d424114bf0089a075978f7ec71f9d1b9ed189a1073bbde2958e",
		keys.DeriveListCursor:      "08e9cd48495da381c3f319b686a639f0598cd2eb26816e76a0229c378e66eb9a",
		keys.DeriveReplicaSettings: "e340db2e9a2aea5c8df69cd0f80f961ac9d8dd38af360094e2400a911143a3fd",
		keys.DeriveBackupManifest:  "73e25583ab9330712f987f6da387b23d96cdcf63b620a8253a020e7edacc314b",
		keys.DeriveKEKID:           "d62507da0bed74157fb3d0fd9918f85ac3ed792eb90bf2fafe1a14bc136b70e2",
	}
	if len(want) != len(keys.Derivations()) {
		t.Fatalf("%d known answers for %d derivations", len(want), len(keys.Derivations()))
	}
	seen := map[string]keys.Derivation{}
	for _, d := range keys.Derivations() {
		k, err := p.DeriveKey(d)
		if err != nil {
			t.Fatal(err)
		}
		got := hex.EncodeToString(k)
		if got != want[d] {
			t.Errorf("%s = %s, want %s", d, got, want[d])
		}
		if other, dup := seen[got]; dup {
			t.Errorf("%s and %s derive the same key", d, other)
		}
		seen[got] = d
	}
	// The KEK's fingerprint, recorded in databases: the first half of its
	// DeriveKEKID secret.
	if fp, err := keys.KEKFingerprint(p); err != nil || fp != want[keys.DeriveKEKID][:32] {
		t.Errorf("KEKFingerprint = %q, %v; want %q", fp, err, want[keys.DeriveKEKID][:32])
	}
	if _, err := p.DeriveKey("certwright something else v1"); err == nil {
		t.Error("a derivation not in keys.Derivations was derived")
	}
}
