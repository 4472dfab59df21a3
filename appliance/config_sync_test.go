package appliance

import (
	"strings"
	"testing"
)

func TestSyncConfig(t *testing.T) {
	const head = "version = 1\n"
	tests := []struct {
		name string
		toml string
		want string // "" for valid, else a substring of the French error
	}{
		{"defaults", "", ""},
		{"windows in French", "[sync]\nwindows = [\"lun-ven 17:30-08:00\", \"sam,dim\"]\nholidays = [\"2026-12-19..2027-01-03\"]\n", ""},
		{"bad window", "[sync]\nwindows = [\"lundi matin\"]\n", "sync.windows"},
		{"bad holiday", "[sync]\nholidays = [\"2026-13-01\"]\n", "sync.holidays"},
		{"bad cap", "[sync]\ndaily_cap = \"beaucoup\"\n", "sync.daily_cap"},
		{"webdav share link", "[destinations.nuage-cm2]\nlabel = \"Nuage\"\ntype = \"webdav\"\nurl = \"https://nuage03.apps.education.fr/s/AbCd\"\n", ""},
		{"webdav without url", "[destinations.nuage-cm2]\nlabel = \"Nuage\"\ntype = \"webdav\"\n", "destinations.nuage-cm2.url"},
		{"user without password file", "[destinations.n]\nlabel = \"N\"\ntype = \"webdav\"\nurl = \"https://h/remote.php/dav/files/u/\"\nuser = \"u\"\n", "destinations.n.user"},
		{"syncthing", "[destinations.academie]\nlabel = \"Académie\"\ntype = \"syncthing\"\ndevice_id = \"MFZWI3D-BONSGYC-YLTMRWG-C43ENR5-QXGZDMM-FZWI3DP-BONSGYY-LTMRWAD\"\n", ""},
		{"syncthing bad id", "[destinations.academie]\nlabel = \"Académie\"\ntype = \"syncthing\"\ndevice_id = \"abc\"\n", "destinations.academie.device_id"},
		{"unknown type", "[destinations.x]\nlabel = \"X\"\ntype = \"ftp\"\n", "destinations.x.type"},
		{"bad id", "[destinations.Nuage_CM2]\nlabel = \"X\"\ntype = \"webdav\"\nurl = \"https://h/s/x\"\n", "destinations.Nuage_CM2"},
		{"bigger hand-ins", "[assignments]\nmax_file_size = \"60MB\"\nmax_handin_size = \"300MB\"\nmax_files = 20\n", ""},
		{"file above hand-in", "[assignments]\nmax_file_size = \"200MB\"\n", "assignments.max_file_size"},
		{"bad file size", "[assignments]\nmax_file_size = \"grand\"\n", "assignments.max_file_size"},
		{"no files", "[assignments]\nmax_files = 0\n", "assignments.max_files"},
		{"unknown assignments key", "[assignments]\nmax_size = \"1MB\"\n", "assignments.max_size"},
		{"unknown key", "[destinations.x]\nlabel = \"X\"\ntype = \"webdav\"\nurl = \"https://h/s/x\"\npassword = \"secret\"\n", "password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("preau.toml", []byte(head+tt.toml))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("ParseConfig: %v, want valid", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("ParseConfig err = %v, want one naming %q", err, tt.want)
			}
		})
	}
}
