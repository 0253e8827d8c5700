package pkcs11

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/miekg/pkcs11"
)

// Bounds on what callers name objects with: CKA_LABEL and CKA_ID have no
// limit of their own, but a longer label or ID is a mistake.
const (
	maxLabelLen = 128
	maxIDLen    = 64
	// maxFound bounds one search: more matches than this for a label or
	// ID is refused as ambiguous all the same.
	maxFound = 16
)

// object is a key in the token, named by class, label and (for key pairs)
// CKA_ID. Its handle holds for one connection; after a reconnection it is
// looked up again.
type object struct {
	class uint
	label string
	id    []byte

	mu  sync.Mutex
	gen uint64 // connection the handle belongs to; 0: none
	h   pkcs11.ObjectHandle
}

func (o *object) template() []*pkcs11.Attribute {
	t := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, o.class),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
	}
	if o.label != "" {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_LABEL, o.label))
	}
	if len(o.id) > 0 {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_ID, o.id))
	}
	return t
}

// handle returns the object's handle in s's connection, finding it again
// after a reconnection.
func (o *object) handle(s session) (pkcs11.ObjectHandle, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.gen == s.gen {
		return o.h, nil
	}
	found, err := s.find(o.template())
	if err != nil {
		return 0, err
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("%w: %s is not in the token", ErrNotFound, o)
	case 1:
	default:
		return 0, fmt.Errorf("%w: %d objects are %s", ErrAmbiguous, len(found), o)
	}
	o.gen, o.h = s.gen, found[0]
	return o.h, nil
}

// set records h as the handle in s's connection.
func (o *object) set(s session, h pkcs11.ObjectHandle) {
	o.mu.Lock()
	o.gen, o.h = s.gen, h
	o.mu.Unlock()
}

func (o *object) String() string {
	if len(o.id) > 0 {
		return fmt.Sprintf("key %q (CKA_ID %s)", o.label, hex.EncodeToString(o.id))
	}
	return fmt.Sprintf("key %q", o.label)
}

// find returns the handles of the objects matching template.
func (s session) find(template []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := s.mod.FindObjectsInit(s.h, template); err != nil {
		return nil, fmt.Errorf("C_FindObjectsInit: %w", err)
	}
	found, _, err := s.mod.FindObjects(s.h, maxFound+1)
	if ferr := s.mod.FindObjectsFinal(s.h); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return nil, fmt.Errorf("C_FindObjects: %w", err)
	}
	return found, nil
}

// publicKeys finds the public key objects with CKA_ID id.
func (s session) publicKeys(id []byte) ([]pkcs11.ObjectHandle, error) {
	return s.find([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	})
}

// attrs reads the attributes types of h.
func (s session) attrs(h pkcs11.ObjectHandle, types ...uint) (map[uint][]byte, error) {
	tmpl := make([]*pkcs11.Attribute, len(types))
	for i, t := range types {
		tmpl[i] = pkcs11.NewAttribute(t, nil)
	}
	got, err := s.mod.GetAttributeValue(s.h, h, tmpl)
	if err != nil {
		return nil, fmt.Errorf("C_GetAttributeValue: %w", err)
	}
	m := make(map[uint][]byte, len(got))
	for _, a := range got {
		m[a.Type] = a.Value
	}
	return m, nil
}

// checkFree refuses when an object with label, or with id, is in the token.
func (s session) checkFree(label string, id []byte) error {
	if found, err := s.find([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}); err != nil {
		return err
	} else if len(found) > 0 {
		return fmt.Errorf("%w: label %q is taken by %d object(s)", ErrExists, label, len(found))
	}
	if len(id) == 0 {
		return nil
	}
	if found, err := s.find([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, id)}); err != nil {
		return err
	} else if len(found) > 0 {
		return fmt.Errorf("%w: CKA_ID %s is taken by %d object(s)", ErrExists, hex.EncodeToString(id), len(found))
	}
	return nil
}

// boolAttr reads a CK_BBOOL attribute value.
func boolAttr(v []byte) bool { return len(v) == 1 && v[0] != 0 }

// falseAttr reports whether a CK_BBOOL attribute value is present and
// false: an attribute the module did not return is not taken for false.
func falseAttr(v []byte) bool { return len(v) == 1 && v[0] == 0 }

// attrRule is one attribute an adopted key must have, and why.
type attrRule struct {
	attr uint
	want bool
	why  string
}

// checkAttrs returns an ErrUnsafeKey error naming the first rule a fails:
// a value missing counts as failing.
func checkAttrs(name string, a map[uint][]byte, rules []attrRule) error {
	for _, r := range rules {
		if r.want && !boolAttr(a[r.attr]) || !r.want && !falseAttr(a[r.attr]) {
			return fmt.Errorf("%w: %s %s", ErrUnsafeKey, name, r.why)
		}
	}
	return nil
}

// attrsOf lists the attributes rules read.
func attrsOf(rules []attrRule) []uint {
	out := make([]uint, len(rules))
	for i, r := range rules {
		out[i] = r.attr
	}
	return out
}

// ulongAttr reads a CK_ULONG attribute value, which the module writes in
// native byte order at the platform's size of unsigned long.
func ulongAttr(v []byte) (uint, bool) {
	switch len(v) {
	case 8:
		return uint(binary.NativeEndian.Uint64(v)), true
	case 4:
		return uint(binary.NativeEndian.Uint32(v)), true
	}
	return 0, false
}

func checkLabel(label string) error {
	switch {
	case label == "":
		return fmt.Errorf("%w: the key label is empty", ErrConfig)
	case len(label) > maxLabelLen:
		return fmt.Errorf("%w: the key label is over %d bytes", ErrConfig, maxLabelLen)
	case !utf8.ValidString(label):
		return fmt.Errorf("%w: the key label is not UTF-8", ErrConfig)
	}
	return nil
}

func checkID(id []byte) error {
	switch {
	case len(id) == 0:
		return fmt.Errorf("%w: the key ID (CKA_ID) is empty", ErrConfig)
	case len(id) > maxIDLen:
		return fmt.Errorf("%w: the key ID (CKA_ID) is over %d bytes", ErrConfig, maxIDLen)
	}
	return nil
}

// ParseID decodes a CKA_ID written in hex, as pkcs11-tool prints it.
func ParseID(s string) ([]byte, error) {
	id, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: key ID %q is not hex: %w", ErrConfig, s, err)
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	return id, nil
}
