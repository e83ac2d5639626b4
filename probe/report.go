package probe

// Report is what `virt-setup doctor --json` writes: the facts, every check's result and the
// recommended setup, so a reader has the conclusions together with what they rest on.
type Report struct {
	Facts          *Facts         `json:"facts"`
	Checks         []Result       `json:"checks"`
	Recommendation Recommendation `json:"recommendation"`
}

// NewReport runs the doctor's checks and the recommendation on facts.
func NewReport(f *Facts) Report {
	if f == nil {
		f = &Facts{}
	}
	return Report{Facts: f, Checks: Diagnose(f), Recommendation: Recommend(f)}
}
