package installer

import "path/filepath"

// PathsFromEnv resolves the user's directories the way the rootless tools do: the XDG variables
// when set to absolute paths (the XDG spec says to ignore relative ones), else their defaults under
// home.
func PathsFromEnv(getenv func(string) string, home string) Paths {
	if h := getenv("HOME"); h != "" {
		home = h
	}
	dir := func(key, def string) string {
		if v := getenv(key); filepath.IsAbs(v) {
			return filepath.Clean(v)
		}
		return filepath.Join(home, def)
	}
	return Paths{
		Home:       home,
		ConfigHome: dir("XDG_CONFIG_HOME", ".config"),
		DataHome:   dir("XDG_DATA_HOME", ".local/share"),
		StateHome:  dir("XDG_STATE_HOME", ".local/state"),
		RuntimeDir: getenv("XDG_RUNTIME_DIR"),
	}
}
