package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/virt-setup/virt-setup/probe"
)

func newExplainCmd(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "explain [ID]",
		Short: "Explain a doctor check: why it matters and how to fix it on Debian/Ubuntu and Fedora/RHEL",
		Long:  "explain prints one check of the doctor's catalog in full. Without an ID it lists every check.",
		Example: `  virt-setup explain VS-SUBID-001
  virt-setup explain`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			st := newStyles(s.Out)
			if len(args) == 0 {
				for _, chk := range probe.Catalog() {
					fmt.Fprintf(s.Out, "%-18s %s\n", chk.ID, chk.Title)
				}
				return nil
			}
			chk, ok := probe.CheckByID(args[0])
			if !ok {
				return usageError{fmt.Errorf("no check %q; 'virt-setup explain' lists them all%s", args[0], suggest(args[0]))}
			}
			fmt.Fprintf(s.Out, "%s  %s\n\n", st.heading.Render(chk.ID), st.heading.Render(chk.Title))
			fmt.Fprintf(s.Out, "%s\n\n", chk.Why)
			for _, fam := range []struct{ family, name string }{{"debian", "Debian and Ubuntu"}, {"fedora", "Fedora and RHEL"}} {
				x := chk.FixFor(fam.family)
				if x.IsZero() {
					continue
				}
				fmt.Fprintln(s.Out, st.label.Render("Fix on "+fam.name+":"))
				renderFix(s.Out, x, "  ", st)
				fmt.Fprintln(s.Out)
			}
			fmt.Fprintf(s.Out, "%s %s\n", st.dim.Render("docs:"), chk.Doc)
			return nil
		},
	}
}

// suggest names catalog IDs that share the topic of a mistyped ID ("VS-SUBID-01" → VS-SUBID-001).
func suggest(id string) string {
	parts := strings.Split(strings.ToUpper(id), "-")
	if len(parts) < 2 {
		return ""
	}
	var near []string
	for _, c := range probe.Catalog() {
		if strings.Contains(c.ID, "-"+parts[1]+"-") {
			near = append(near, c.ID)
		}
	}
	if len(near) == 0 {
		return ""
	}
	return "; did you mean " + strings.Join(near, ", ") + "?"
}
