package store_test

import (
	"regexp"
	"testing"
)

// estProvisionerWrite matches a write to the table the EST provisioner
// cache holds rows of.
var estProvisionerWrite = regexp.MustCompile(`(?is)\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+est_provisioners\b`)

// TestESTWritesUseESTTx guards the invalidation of the EST provisioner
// cache against future write paths: any function of this package whose
// SQL writes an EST provisioner must run it through estTx.
func TestESTWritesUseESTTx(t *testing.T) {
	t.Parallel()
	writesUseTx(t, estProvisionerWrite, nil, "estTx", 4, "the EST provisioner cache")
}
