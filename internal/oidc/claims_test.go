package oidc

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestParseClaims(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		payload string
		sub     string
		groups  []string
		email   string
		verif   bool
		errPart string // "" means accepted
	}{
		{"full", `{"sub":"u1","email":"a@b.example","email_verified":true,"name":"A","groups":["b","a","b"]}`, "u1", []string{"a", "b"}, "a@b.example", true, ""},
		{"verified as string", `{"sub":"u1","email_verified":"true"}`, "u1", nil, "", true, ""},
		{"lone group", `{"sub":"u1","groups":"admins"}`, "u1", []string{"admins"}, "", false, ""},
		{"null groups", `{"sub":"u1","groups":null}`, "u1", nil, "", false, ""},
		{"no groups", `{"sub":"u1"}`, "u1", nil, "", false, ""},
		{"no subject", `{"email":"a@b.example"}`, "", nil, "", false, "no subject claim"},
		{"empty subject", `{"sub":""}`, "", nil, "", false, "no subject claim"},
		{"numeric subject", `{"sub":42}`, "", nil, "", false, `"sub" is a number`},
		{"subject with newline", `{"sub":"a\nb"}`, "", nil, "", false, "control character"},
		{"long subject", `{"sub":"` + strings.Repeat("x", 256) + `"}`, "", nil, "", false, "at most 255"},
		{"groups object", `{"sub":"u","groups":{"a":1}}`, "", nil, "", false, "is an object, want a list"},
		{"groups number entry", `{"sub":"u","groups":["a",1]}`, "", nil, "", false, "entry 1 is a number"},
		{"empty group", `{"sub":"u","groups":[""]}`, "", nil, "", false, "entry 0 is empty"},
		{"long group", `{"sub":"u","groups":["` + strings.Repeat("g", 257) + `"]}`, "", nil, "", false, "longer than 256"},
		{"too many groups", `{"sub":"u","groups":[` + strings.TrimSuffix(strings.Repeat(`"g",`, 257), ",") + `]}`, "", nil, "", false, "257 groups"},
		{"verified garbage", `{"sub":"u","email_verified":"yes"}`, "", nil, "", false, "want true or false"},
		{"email with display name", `{"sub":"u","email":"A <a@b.example>"}`, "", nil, "", false, "plain email"},
		{"not an object", `[1,2]`, "", nil, "", false, "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseClaims([]byte(tt.payload), "sub", "groups")
			if tt.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errPart) {
					t.Fatalf("parseClaims = %v, want an error saying %q", err, tt.errPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.subject != tt.sub || !slices.Equal(c.groups, tt.groups) || c.email != tt.email || c.emailVerified != tt.verif {
				t.Errorf("claims = %+v", c)
			}
		})
	}

	t.Run("configured claims", func(t *testing.T) {
		t.Parallel()
		c, err := parseClaims([]byte(`{"sub":"s","oid":"o-1","https://x.example/roles":["r"]}`), "oid", "https://x.example/roles")
		if err != nil || c.subject != "o-1" || !slices.Equal(c.groups, []string{"r"}) {
			t.Errorf("claims = %+v, %v", c, err)
		}
	})
}

// FuzzParseClaims: an ID token's payload is attacker-shaped JSON (a
// provider's bug or a compromised one); parsing must never panic and what
// it accepts must be within bounds.
func FuzzParseClaims(f *testing.F) {
	for _, s := range []string{
		`{"sub":"u1","email":"a@b.example","email_verified":true,"name":"A","groups":["b","a"]}`,
		`{"sub":"u1","groups":"one"}`, `{"sub":1}`, `{"sub":"u","groups":[1,{}]}`, `null`, `{}`,
		`{"sub":"u","email_verified":"false","name":"x\u0000y"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := parseClaims(payload, "sub", "groups")
		if err != nil {
			return
		}
		if c.subject == "" || len(c.subject) > maxSubjectBytes || !utf8.ValidString(c.subject) {
			t.Fatalf("accepted subject %q", c.subject)
		}
		if len(c.groups) > MaxGroups || !slices.IsSorted(c.groups) {
			t.Fatalf("accepted groups %q", c.groups)
		}
		for _, g := range c.groups {
			if g == "" || len(g) > MaxGroupBytes || strings.IndexFunc(g, unicode.IsControl) >= 0 {
				t.Fatalf("accepted group %q", g)
			}
		}
		if strings.IndexFunc(c.name, unicode.IsControl) >= 0 || len(c.email) > maxEmailBytes {
			t.Fatalf("accepted name %q, email %q", c.name, c.email)
		}
		if _, err := json.Marshal(c.groups); err != nil {
			t.Fatal(err)
		}
	})
}
