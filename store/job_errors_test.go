package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/cdcd-dev/cdcd/jobs"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// Regression: a record of an import job that the inbound pipeline could
// not apply to its table was dead-lettered, but the job's errors did not
// count it and cdcd.job_errors did not list it. A new dead letter of a
// change an import handed over ("import/<job>/...") now counts in that
// job's errors, with a job error naming the record and linked to the
// letter, in the letter's statement's transaction; a letter merged into an
// open one (the same change failing again) is not counted twice, and one
// of a job that no longer exists is stored all the same.
func TestImportDeadLetterCountsInItsJob(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	ctx := context.Background()
	js := jobs.NewStore(s.Pool())
	job, err := js.Create(ctx, jobs.Spec{Kind: "import", Pipeline: "hubspot-to-contacts", RequestedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	imported := letter("hubspot-to-contacts", `{"id":"7"}`)
	imported.EventID = fmt.Sprintf("import/%d/contacts/7/1700000000000", job.ID)
	imported.Error = `apply: new row violates check constraint "email_ok"`
	gone := letter("hubspot-to-contacts", `{"id":"8"}`)
	gone.EventID = "import/999999/contacts/8"
	dl := s.DeadLetters()
	for range 2 { // the second Put is the same change failing again
		if err := s.InTx(ctx, func(ctx context.Context) error {
			return dl.Put(ctx, []syncstate.DeadLetter{imported, letter("hubspot-to-contacts", `{"id":"9"}`), gone})
		}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := js.Get(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Errors != 1 {
		t.Errorf("job errors %d, want 1", got.Errors)
	}
	list, err := s.ListDeadLetters(ctx, DeadLetterFilter{Pipeline: "hubspot-to-contacts"})
	if err != nil {
		t.Fatal(err)
	}
	var letterID int64
	for _, l := range list {
		if l.EventID == imported.EventID {
			letterID = l.ID
		}
	}
	if len(list) != 3 || letterID == 0 {
		t.Fatalf("dead letters %+v, want 3 with the imported record's", list)
	}
	errs, err := js.Errors(ctx, job.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 1 || errs[0].Record != imported.Key || errs[0].Error != imported.Error || errs[0].DeadLetter != letterID {
		t.Fatalf("job errors %+v, want the record %s, its error and dead letter %d", errs, imported.Key, letterID)
	}
}
