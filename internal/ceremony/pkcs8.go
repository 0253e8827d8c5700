package ceremony

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
)

// The root key file is an encrypted PKCS#8 private key (RFC 5958
// EncryptedPrivateKeyInfo, PEM "ENCRYPTED PRIVATE KEY") under PBES2 (RFC
// 8018 6.2): PBKDF2 with HMAC-SHA-256 derives an AES-256-CBC key from the
// passphrase. It is the form "openssl pkcs8 -topk8 -v2 aes-256-cbc
// -v2prf hmacWithSHA256 -iter 1000000" writes, so the key stays readable
// with standard tools for the decades a root lives, and can be moved into
// an HSM without Certwright. scrypt would be memory-hard, but OpenSSL
// decrypts PKCS#8 scrypt only up to 32 MiB of memory (N=2^14, r=8), which
// costs an attacker about what a million PBKDF2-SHA-256 iterations do; the
// passphrase's length is what really protects the key, so at least
// MinPassphrase characters are required.

// DefaultIterations is the PBKDF2 iteration count of a new key file: well
// above OWASP's 600,000 for PBKDF2-HMAC-SHA-256 (2023), about a quarter of
// a second on a laptop, paid once per ceremony step.
const DefaultIterations = 1_000_000

// maxIterations bounds what a key file may ask for, so a damaged or hostile
// file cannot keep the ceremony busy for hours.
const maxIterations = 20_000_000

// MinPassphrase is the fewest characters a new key's passphrase may have.
const MinPassphrase = 12

// maxKeyFile bounds the key file read (an RSA-4096 key is about 3.3 KiB).
const maxKeyFile = 64 << 10

// pemEncryptedKey is the PEM type of an encrypted PKCS#8 key (RFC 7468 11).
const pemEncryptedKey = "ENCRYPTED PRIVATE KEY"

// ErrPassphrase is returned when the passphrase does not open the key file
// (or the file was altered: CBC without a MAC cannot tell the two apart,
// but the key found is also checked against the root certificate).
var ErrPassphrase = errors.New("ceremony: wrong passphrase, or the key file is damaged")

// ErrKeyFile is returned for a key file that is not an encrypted PKCS#8
// key in the form this package writes.
var ErrKeyFile = errors.New("ceremony: unreadable key file")

func oidPBES2() asn1.ObjectIdentifier      { return asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13} }
func oidPBKDF2() asn1.ObjectIdentifier     { return asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12} }
func oidHMACSHA256() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9} }
func oidAES256CBC() asn1.ObjectIdentifier {
	return asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
}

// encryptedPrivateKeyInfo is RFC 5958 section 3.
type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

// pbes2Params is RFC 8018 appendix A.4.
type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

// pbkdf2Params is RFC 8018 appendix A.2. The PRF is written and required:
// its default, HMAC-SHA-1, is not accepted.
type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                      `asn1:"optional"`
	PRF            pkix.AlgorithmIdentifier `asn1:"optional"`
}

const (
	saltLen   = 16
	aesKeyLen = 32
)

// encryptKey returns key as PEM encrypted PKCS#8 under passphrase.
func encryptKey(rand io.Reader, key crypto.Signer, passphrase []byte, iterations int) ([]byte, error) {
	if iterations <= 0 || iterations > maxIterations {
		return nil, fmt.Errorf("ceremony: PBKDF2 iteration count %d: want 1 to %d", iterations, maxIterations)
	}
	plain, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ceremony: encode private key: %w", err)
	}
	salt := make([]byte, saltLen)
	iv := make([]byte, aes.BlockSize)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return nil, fmt.Errorf("ceremony: salt: %w", err)
	}
	if _, err := io.ReadFull(rand, iv); err != nil {
		return nil, fmt.Errorf("ceremony: IV: %w", err)
	}
	dk, err := pbkdf2.Key(sha256.New, string(passphrase), salt, iterations, aesKeyLen)
	if err != nil {
		return nil, fmt.Errorf("ceremony: derive key: %w", err)
	}
	block, err := aes.NewCipher(dk)
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	buf := make([]byte, len(plain)+pad)
	copy(buf, plain)
	for i := len(plain); i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)

	kdf, err := asn1.Marshal(pbkdf2Params{Salt: salt, IterationCount: iterations, KeyLength: aesKeyLen,
		PRF: pkix.AlgorithmIdentifier{Algorithm: oidHMACSHA256(), Parameters: asn1.NullRawValue}})
	if err != nil {
		return nil, fmt.Errorf("ceremony: encode PBKDF2 parameters: %w", err)
	}
	ivDER, err := asn1.Marshal(iv)
	if err != nil {
		return nil, fmt.Errorf("ceremony: encode IV: %w", err)
	}
	params, err := asn1.Marshal(pbes2Params{
		KeyDerivationFunc: pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2(), Parameters: asn1.RawValue{FullBytes: kdf}},
		EncryptionScheme:  pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC(), Parameters: asn1.RawValue{FullBytes: ivDER}},
	})
	if err != nil {
		return nil, fmt.Errorf("ceremony: encode PBES2 parameters: %w", err)
	}
	der, err := asn1.Marshal(encryptedPrivateKeyInfo{
		Algorithm:     pkix.AlgorithmIdentifier{Algorithm: oidPBES2(), Parameters: asn1.RawValue{FullBytes: params}},
		EncryptedData: buf,
	})
	if err != nil {
		return nil, fmt.Errorf("ceremony: encode encrypted key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemEncryptedKey, Bytes: der}), nil
}

// unmarshalAll is asn1.Unmarshal refusing trailing bytes.
func unmarshalAll(der []byte, out any, what string) error {
	rest, err := asn1.Unmarshal(der, out)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrKeyFile, what, err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %s: %d trailing bytes", ErrKeyFile, what, len(rest))
	}
	return nil
}

// kdfParams reads what decryptKey needs from a PEM encrypted PKCS#8 key:
// the PBKDF2 salt and iteration count, the AES-256-CBC IV and the
// ciphertext. Anything but PBES2 with PBKDF2-HMAC-SHA-256 and AES-256-CBC
// is refused.
func kdfParams(data []byte) (kdf pbkdf2Params, iv, ciphertext []byte, err error) {
	if len(data) > maxKeyFile {
		return kdf, nil, nil, fmt.Errorf("%w: %d bytes, more than %d", ErrKeyFile, len(data), maxKeyFile)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != pemEncryptedKey {
		return kdf, nil, nil, fmt.Errorf("%w: no PEM %q block (an unencrypted key is never accepted)", ErrKeyFile, pemEncryptedKey)
	}
	var info encryptedPrivateKeyInfo
	if err := unmarshalAll(b.Bytes, &info, "EncryptedPrivateKeyInfo"); err != nil {
		return kdf, nil, nil, err
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2()) {
		return kdf, nil, nil, fmt.Errorf("%w: encryption scheme %v, want PBES2", ErrKeyFile, info.Algorithm.Algorithm)
	}
	var p pbes2Params
	if err := unmarshalAll(info.Algorithm.Parameters.FullBytes, &p, "PBES2 parameters"); err != nil {
		return kdf, nil, nil, err
	}
	if !p.KeyDerivationFunc.Algorithm.Equal(oidPBKDF2()) {
		return kdf, nil, nil, fmt.Errorf("%w: key derivation %v, want PBKDF2", ErrKeyFile, p.KeyDerivationFunc.Algorithm)
	}
	if err := unmarshalAll(p.KeyDerivationFunc.Parameters.FullBytes, &kdf, "PBKDF2 parameters"); err != nil {
		return kdf, nil, nil, err
	}
	if !kdf.PRF.Algorithm.Equal(oidHMACSHA256()) {
		return kdf, nil, nil, fmt.Errorf("%w: PBKDF2 pseudo-random function %v, want HMAC-SHA-256", ErrKeyFile, kdf.PRF.Algorithm)
	}
	if kdf.IterationCount < 1 || kdf.IterationCount > maxIterations {
		return kdf, nil, nil, fmt.Errorf("%w: PBKDF2 iteration count %d: want 1 to %d", ErrKeyFile, kdf.IterationCount, maxIterations)
	}
	if len(kdf.Salt) < 8 || len(kdf.Salt) > 64 {
		return kdf, nil, nil, fmt.Errorf("%w: PBKDF2 salt of %d bytes", ErrKeyFile, len(kdf.Salt))
	}
	if kdf.KeyLength != 0 && kdf.KeyLength != aesKeyLen {
		return kdf, nil, nil, fmt.Errorf("%w: PBKDF2 key length %d, want %d", ErrKeyFile, kdf.KeyLength, aesKeyLen)
	}
	if !p.EncryptionScheme.Algorithm.Equal(oidAES256CBC()) {
		return kdf, nil, nil, fmt.Errorf("%w: cipher %v, want AES-256-CBC", ErrKeyFile, p.EncryptionScheme.Algorithm)
	}
	if err := unmarshalAll(p.EncryptionScheme.Parameters.FullBytes, &iv, "AES-CBC IV"); err != nil {
		return kdf, nil, nil, err
	}
	if len(iv) != aes.BlockSize {
		return kdf, nil, nil, fmt.Errorf("%w: IV of %d bytes", ErrKeyFile, len(iv))
	}
	if n := len(info.EncryptedData); n == 0 || n%aes.BlockSize != 0 {
		return kdf, nil, nil, fmt.Errorf("%w: ciphertext of %d bytes is not whole AES blocks", ErrKeyFile, n)
	}
	return kdf, iv, info.EncryptedData, nil
}

// decryptKey opens a PEM encrypted PKCS#8 key written by encryptKey (or by
// openssl with the same algorithms).
func decryptKey(data, passphrase []byte) (crypto.Signer, error) {
	kdf, iv, ciphertext, err := kdfParams(data)
	if err != nil {
		return nil, err
	}
	dk, err := pbkdf2.Key(sha256.New, string(passphrase), kdf.Salt, kdf.IterationCount, aesKeyLen)
	if err != nil {
		return nil, fmt.Errorf("ceremony: derive key: %w", err)
	}
	block, err := aes.NewCipher(dk)
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	buf := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(buf, ciphertext)
	pad := int(buf[len(buf)-1])
	if pad < 1 || pad > aes.BlockSize {
		return nil, ErrPassphrase
	}
	want := make([]byte, pad)
	for i := range want {
		want[i] = byte(pad)
	}
	if subtle.ConstantTimeCompare(buf[len(buf)-pad:], want) != 1 {
		return nil, ErrPassphrase
	}
	key, err := x509.ParsePKCS8PrivateKey(buf[:len(buf)-pad])
	if err != nil {
		return nil, ErrPassphrase
	}
	sg, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: the key (%T) cannot sign", ErrKeyFile, key)
	}
	return sg, nil
}
