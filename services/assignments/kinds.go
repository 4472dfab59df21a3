package assignments

import (
	"archive/zip"
	"bytes"
	"io"
	"slices"
	"strings"
)

// fileType is a media type pupils may hand in: its kind, the extensions a
// file of this type may keep (the first is added when the name has none of
// them) and its short label.
type fileType struct {
	mediaType string
	kind      string
	exts      []string
	label     string
}

// fileTypes are the types the sniffer recognises. Anything else is refused,
// whatever the client says the file is.
var fileTypes = map[string]fileType{}

func init() {
	for _, t := range []fileType{
		{"image/jpeg", KindImage, []string{".jpg", ".jpeg", ".jpe", ".jfif"}, "JPEG"},
		{"image/png", KindImage, []string{".png"}, "PNG"},
		{"image/gif", KindImage, []string{".gif"}, "GIF"},
		{"image/webp", KindImage, []string{".webp"}, "WebP"},
		{"image/heic", KindImage, []string{".heic", ".heif"}, "HEIC"},
		{"image/avif", KindImage, []string{".avif"}, "AVIF"},
		{"image/bmp", KindImage, []string{".bmp"}, "BMP"},
		{"image/tiff", KindImage, []string{".tif", ".tiff"}, "TIFF"},
		{"application/pdf", KindPDF, []string{".pdf"}, "PDF"},
		{"application/vnd.oasis.opendocument.text", KindOffice, []string{".odt"}, "ODT"},
		{"application/vnd.oasis.opendocument.spreadsheet", KindOffice, []string{".ods"}, "ODS"},
		{"application/vnd.oasis.opendocument.presentation", KindOffice, []string{".odp"}, "ODP"},
		{"application/vnd.oasis.opendocument.graphics", KindOffice, []string{".odg"}, "ODG"},
		{"application/vnd.openxmlformats-officedocument.wordprocessingml.document", KindOffice, []string{".docx"}, "DOCX"},
		{"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", KindOffice, []string{".xlsx"}, "XLSX"},
		{"application/vnd.openxmlformats-officedocument.presentationml.presentation", KindOffice, []string{".pptx"}, "PPTX"},
		{"audio/mpeg", KindAudio, []string{".mp3"}, "MP3"},
		{"audio/aac", KindAudio, []string{".aac"}, "AAC"},
		{"audio/mp4", KindAudio, []string{".m4a", ".m4b", ".mp4"}, "M4A"},
		{"audio/ogg", KindAudio, []string{".ogg", ".oga", ".opus"}, "Ogg"},
		{"audio/wav", KindAudio, []string{".wav"}, "WAV"},
		{"audio/flac", KindAudio, []string{".flac"}, "FLAC"},
		{"audio/amr", KindAudio, []string{".amr"}, "AMR"},
		{"audio/webm", KindAudio, []string{".webm", ".weba"}, "WebM"},
		{"audio/3gpp", KindAudio, []string{".3gp", ".3gpp", ".3ga"}, "3GP"},
		{"text/plain; charset=utf-8", KindText, []string{".txt", ".md", ".csv"}, "TXT"},
	} {
		fileTypes[t.mediaType] = t
	}
}

// zipPending is what sniff returns for a ZIP archive: only the whole file
// says whether it is an OpenDocument or an Office Open XML document.
const zipPending = "application/zip"

// sniffLen is how many leading bytes sniff looks at.
const sniffLen = 4096

// sniff names the type of a file from its first bytes (up to sniffLen, or
// the whole file when shorter): a key of fileTypes, zipPending, or "" when
// the file is of no accepted type. The client's Content-Type and the file
// name play no part.
func sniff(b []byte) string {
	has := func(off int, sig string) bool {
		return len(b) >= off+len(sig) && string(b[off:off+len(sig)]) == sig
	}
	switch {
	case has(0, "\xFF\xD8\xFF"):
		return "image/jpeg"
	case has(0, "\x89PNG\r\n\x1a\n"):
		return "image/png"
	case has(0, "GIF87a"), has(0, "GIF89a"):
		return "image/gif"
	case has(0, "RIFF") && has(8, "WEBP"):
		return "image/webp"
	case has(0, "RIFF") && has(8, "WAVE"):
		return "audio/wav"
	case has(0, "BM") && len(b) >= 26 && b[14] != 0 && b[15] == 0 && b[16] == 0 && b[17] == 0:
		return "image/bmp" // BITMAPFILEHEADER then a header size of 12 to 124 bytes
	case has(0, "II*\x00"), has(0, "MM\x00*"):
		return "image/tiff"
	case has(4, "ftyp"):
		return sniffFtyp(b)
	case bytes.Contains(b[:min(len(b), 1024)], []byte("%PDF-")):
		return "application/pdf"
	case has(0, "PK\x03\x04"):
		return zipPending
	case has(0, "ID3"):
		return "audio/mpeg"
	case has(0, "OggS"):
		return "audio/ogg"
	case has(0, "fLaC"):
		return "audio/flac"
	case has(0, "#!AMR"):
		return "audio/amr"
	case has(0, "\x1A\x45\xDF\xA3"):
		// Matroska/WebM: what Chrome's and Android's recorders write. A
		// video slips through as audio; the teacher still gets the file.
		return "audio/webm"
	case len(b) >= 4 && b[0] == 0xFF && b[1]&0xF6 == 0xF0:
		return "audio/aac" // ADTS
	case len(b) >= 4 && b[0] == 0xFF && b[1]&0xE0 == 0xE0 && b[1]&0x06 != 0 && b[2]&0xF0 != 0xF0:
		return "audio/mpeg" // MPEG audio frame without ID3 tag
	case len(b) > 0 && isText(b):
		return "text/plain; charset=utf-8"
	}
	return ""
}

// sniffFtyp reads the brands of an ISO base media file (HEIC, AVIF, M4A,
// 3GP). MP4 and QuickTime videos are not accepted.
func sniffFtyp(b []byte) string {
	if len(b) < 12 {
		return ""
	}
	size := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	if size < 16 || size > len(b) {
		size = min(len(b), 64)
	}
	brands := []string{string(b[8:12])}
	for off := 16; off+4 <= size; off += 4 {
		brands = append(brands, string(b[off:off+4]))
	}
	for _, br := range brands {
		switch br {
		case "heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1":
			return "image/heic"
		case "avif", "avis":
			return "image/avif"
		case "M4A ", "M4B ", "M4P ":
			return "audio/mp4"
		case "3gp4", "3gp5", "3gp6", "3gp7", "3ge6", "3ge7", "3gg6", "3g2a":
			return "audio/3gpp"
		}
	}
	return ""
}

// isText reports whether b looks like text: no NUL or other control bytes
// that text files do not contain (tab, newlines, form feed and escape are
// fine). Encodings other than UTF-8 pass too; the teacher's editor copes.
func isText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != 0x1b {
			return false
		}
		if c == 0x7f {
			return false
		}
	}
	return true
}

// textChecker passes bytes through and remembers whether one of them was
// binary, so a text file is checked to its end while it streams.
type textChecker struct {
	r      io.Reader
	binary bool
}

func (t *textChecker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 && !t.binary && !isText(p[:n]) {
		t.binary = true
	}
	return n, err
}

// zipType opens a stored ZIP file and names the document type it holds, or
// returns "" when it is not an OpenDocument or Office Open XML document.
func zipType(r io.ReaderAt, size int64) string {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return ""
	}
	names := map[string]*zip.File{}
	for _, f := range zr.File {
		names[f.Name] = f
	}
	if f := names["mimetype"]; f != nil && f.UncompressedSize64 < 100 {
		rc, err := f.Open()
		if err != nil {
			return ""
		}
		b, err := io.ReadAll(io.LimitReader(rc, 100))
		rc.Close()
		if err != nil {
			return ""
		}
		mt := strings.TrimSpace(string(b))
		if t, ok := fileTypes[mt]; ok && strings.HasPrefix(mt, "application/vnd.oasis.opendocument.") && t.kind == KindOffice {
			if names["content.xml"] != nil {
				return mt
			}
		}
		return ""
	}
	if names["[Content_Types].xml"] == nil {
		return ""
	}
	switch {
	case names["word/document.xml"] != nil:
		return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	case names["xl/workbook.xml"] != nil:
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case names["ppt/presentation.xml"] != nil:
		return "application/vnd.openxmlformats-officedocument.presentationml.presentation"
	}
	return ""
}

// kindOf returns the kind of a sniffed type ("" when unknown).
func kindOf(mediaType string) string {
	if mediaType == zipPending {
		return KindOffice
	}
	return fileTypes[mediaType].kind
}

// acceptAttr builds the accept attribute of a file input for kinds: media
// types and extensions, so that pickers offer only files the box takes.
func acceptAttr(kinds []string) string {
	var parts []string
	for _, k := range AllKinds {
		if !slices.Contains(kinds, k) {
			continue
		}
		switch k {
		case KindImage:
			parts = append(parts, "image/*")
		case KindAudio:
			parts = append(parts, "audio/*")
		}
		for _, mt := range typeOrder {
			t := fileTypes[mt]
			if t.kind != k {
				continue
			}
			if k != KindImage && k != KindAudio {
				base, _, _ := strings.Cut(mt, ";")
				parts = append(parts, base)
			}
			parts = append(parts, t.exts...)
		}
	}
	return strings.Join(parts, ",")
}

// typeOrder lists fileTypes' keys in a stable order.
var typeOrder = []string{
	"image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/avif", "image/bmp", "image/tiff",
	"application/pdf",
	"application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
	"application/vnd.oasis.opendocument.presentation", "application/vnd.oasis.opendocument.graphics",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation",
	"audio/mpeg", "audio/aac", "audio/mp4", "audio/ogg", "audio/wav", "audio/flac", "audio/amr", "audio/webm", "audio/3gpp",
	"text/plain; charset=utf-8",
}
