package usb

import "syscall"

// msdosMagic is the statfs type of FAT file systems (vfat, msdos), whose
// files cannot reach 4 GiB. exFAT reports another type.
const msdosMagic = 0x4d44

// volume returns the bytes free to an unprivileged writer in dir and
// whether its file system is FAT.
func volume(dir string) (free int64, fat bool, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false, err
	}
	return int64(st.Bavail) * int64(st.Bsize), st.Type == msdosMagic, nil
}
