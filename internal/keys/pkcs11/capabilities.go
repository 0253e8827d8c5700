package pkcs11

import (
	"context"
	"fmt"
	"slices"

	"github.com/certwright/certwright/internal/pki"
	"github.com/miekg/pkcs11"
)

// Capabilities says what the provider can do with the token it opened.
type Capabilities struct {
	// Exportable is always false: a key generated or adopted here never
	// leaves the token, so the provider has no export and the server
	// cannot hand out a key it holds (it keeps managed end-entity keys,
	// which may be exported, with another provider).
	Exportable bool
	// Algorithms lists the key algorithms the token can generate and
	// sign with (both mechanisms present, the size in the range the
	// token states), in pki.KeyAlgorithms order.
	Algorithms []pki.KeyAlgorithm
	// KEK is true when the token can generate an AES-256 key and use it
	// with CKM_AES_GCM.
	KEK bool
}

// Capabilities asks the token which mechanisms it has.
func (p *Provider) Capabilities(ctx context.Context) (Capabilities, error) {
	var c Capabilities
	err := p.do(ctx, "capabilities", func(s session) error {
		mechs, err := s.mod.GetMechanismList(s.slot)
		if err != nil {
			return fmt.Errorf("C_GetMechanismList: %w", err)
		}
		// has reports whether mech is there with flag, for a key of
		// size (bits for RSA and EC, bytes for AES; 0: any).
		has := func(mech, flag uint, size int) (bool, error) {
			if !slices.ContainsFunc(mechs, func(m *pkcs11.Mechanism) bool { return m.Mechanism == mech }) {
				return false, nil
			}
			info, err := s.mod.GetMechanismInfo(s.slot, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)})
			if err != nil {
				return false, fmt.Errorf("C_GetMechanismInfo %#x: %w", mech, err)
			}
			inRange := size == 0 || (uint(size) >= info.MinKeySize && (info.MaxKeySize == 0 || uint(size) <= info.MaxKeySize))
			return info.Flags&flag == flag && inRange, nil
		}
		c = Capabilities{}
		for _, alg := range pki.KeyAlgorithms() {
			spec, ok := keySpecs[alg]
			if !ok {
				continue
			}
			signMech := uint(pkcs11.CKM_RSA_PKCS)
			if spec.keyType == pkcs11.CKK_EC {
				signMech = pkcs11.CKM_ECDSA
			}
			size := spec.bits
			if spec.curve != nil {
				size = spec.curve.Params().BitSize
			}
			gen, err := has(spec.genMech, pkcs11.CKF_GENERATE_KEY_PAIR, size)
			if err != nil {
				return err
			}
			sign, err := has(signMech, pkcs11.CKF_SIGN, size)
			if err != nil {
				return err
			}
			if gen && sign {
				c.Algorithms = append(c.Algorithms, alg)
			}
		}
		aesGen, err := has(pkcs11.CKM_AES_KEY_GEN, pkcs11.CKF_GENERATE, kekBytes)
		if err != nil {
			return err
		}
		gcm, err := has(pkcs11.CKM_AES_GCM, pkcs11.CKF_ENCRYPT|pkcs11.CKF_DECRYPT, kekBytes)
		if err != nil {
			return err
		}
		c.KEK = aesGen && gcm
		return nil
	})
	return c, err
}
