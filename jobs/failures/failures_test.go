package failures

import "testing"

func TestImportJob(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		id   string
		job  int64
		want bool
	}{
		{"import/12/contacts/7/1700000000000", 12, true},
		{"import/12/contacts/a/b", 12, true},
		{"import/12", 0, false},
		{"import//contacts/7", 0, false},
		{"import/-1/contacts/7", 0, false},
		{"import/x/contacts/7", 0, false},
		{"backfill/12/contacts/7", 0, false},
		{"0/16B3748", 0, false},
	} {
		if job, ok := ImportJob(c.id); ok != c.want || ok && job != c.job {
			t.Errorf("ImportJob(%q) = %d, %v; want %d, %v", c.id, job, ok, c.job, c.want)
		}
	}
}
