package image

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/virt-setup/virt-setup/internal/sys"
)

// BinaryWithLibraries returns the files that make the program src run in an image: src itself at
// dst, and every shared library `ldd` lists (the dynamic loader included) at the path ldd shows,
// so the loader finds them where it would on this host. A static program needs no libraries.
func BinaryWithLibraries(ctx context.Context, r sys.Runner, src, dst string) ([]File, error) {
	files := []File{{Src: src, Dst: dst}}
	static, err := IsStatic(src)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", src, err)
	}
	if static {
		return files, nil
	}
	res, err := r.Run(ctx, sys.Command{Path: "ldd", Args: []string{src}})
	if err != nil {
		return nil, fmt.Errorf("list the libraries of %s: %w", src, err)
	}
	libs, err := ParseLdd(string(res.Stdout))
	if err != nil {
		return nil, fmt.Errorf("list the libraries of %s: %w", src, err)
	}
	for _, lib := range libs {
		files = append(files, File{Src: lib, Dst: lib})
	}
	return files, nil
}

// ParseLdd returns the absolute paths of the libraries in glibc's or musl's `ldd` output, the
// dynamic loader included, sorted and without duplicates. Libraries without a file (the vDSO) are
// left out; a library ldd could not find is an error naming it.
//
//	linux-vdso.so.1 (0x00007ffd...)
//	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f...)
//	/lib64/ld-linux-x86-64.so.2 (0x00007f...)
//	libfoo.so.1 => not found
func ParseLdd(out string) ([]string, error) {
	var libs, missing []string
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if line == "" || strings.Contains(line, "statically linked") || strings.Contains(line, "not a dynamic executable") {
			continue
		}
		name, where, arrow := strings.Cut(line, "=>")
		name = strings.TrimSpace(name)
		if arrow {
			where = strings.TrimSpace(where)
			if where == "not found" || strings.HasPrefix(where, "not found") {
				missing = append(missing, name)
				continue
			}
		} else {
			where = name
		}
		// Drop the load address: "(0x00007f...)".
		if i := strings.LastIndex(where, " ("); i >= 0 {
			where = strings.TrimSpace(where[:i])
		} else if strings.HasPrefix(where, "(") {
			where = ""
		}
		if where == "" || !filepath.IsAbs(where) {
			// linux-vdso.so.1 and musl's ldd line for the program itself have no file.
			continue
		}
		libs = append(libs, filepath.Clean(where))
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("libraries not found: %s", strings.Join(missing, ", "))
	}
	if len(libs) == 0 {
		return nil, errors.New("ldd listed no libraries")
	}
	slices.Sort(libs)
	return slices.Compact(libs), nil
}
