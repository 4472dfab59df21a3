package captive

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"
)

// ErrNoCertificate is returned by TLSConfig when no certificate is
// configured: the box then serves plain HTTP only (see docs/captive.md).
var ErrNoCertificate = errors.New("no HTTPS certificate configured")

// TLSConfig loads the configured certificate and returns the TLS settings
// for the HTTPS listener that serves Handler (the RFC 8908 API and the
// portal). The files are read again when they change on disk (a renewed
// certificate is picked up without restart, checked at most once a
// minute). It fails if the certificate does not cover the host of
// HTTPSURL.
func (c *Captive) TLSConfig() (*tls.Config, error) {
	if c.tls == nil {
		return nil, ErrNoCertificate
	}
	if _, err := c.tls.load(); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.tls.load()
		},
	}, nil
}

type certLoader struct {
	certFile, keyFile, host string

	mu       sync.Mutex
	cert     *tls.Certificate
	stamp    string    // sizes and modification times of the files loaded
	checked  time.Time // last look at the files
	reloadIn time.Duration
}

func newCertLoader(certFile, keyFile, httpsURL string) *certLoader {
	if certFile == "" {
		return nil
	}
	host := ""
	if u, err := url.Parse(httpsURL); err == nil {
		host = u.Hostname()
	}
	return &certLoader{certFile: certFile, keyFile: keyFile, host: host, reloadIn: time.Minute}
}

// load returns the certificate, reading the files again when they changed.
// If a changed pair is broken, the previous certificate keeps serving.
func (l *certLoader) load() (*tls.Certificate, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.cert != nil && now.Sub(l.checked) < l.reloadIn {
		return l.cert, nil
	}
	l.checked = now
	stamp, err := fileStamp(l.certFile, l.keyFile)
	if err != nil {
		if l.cert != nil {
			return l.cert, nil
		}
		return nil, fmt.Errorf("load HTTPS certificate: %w", err)
	}
	if l.cert != nil && stamp == l.stamp {
		return l.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(l.certFile, l.keyFile)
	if err == nil && l.host != "" {
		if err = cert.Leaf.VerifyHostname(l.host); err != nil {
			err = fmt.Errorf("certificate %s does not cover %s (HTTPSURL): %w", l.certFile, l.host, err)
		}
	}
	if err != nil {
		if l.cert != nil {
			return l.cert, nil
		}
		return nil, fmt.Errorf("load HTTPS certificate: %w", err)
	}
	l.cert, l.stamp = &cert, stamp
	return l.cert, nil
}

func fileStamp(paths ...string) (string, error) {
	s := ""
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		s += fmt.Sprintf("%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return s, nil
}
