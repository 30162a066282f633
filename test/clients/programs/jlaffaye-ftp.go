// Go's github.com/jlaffaye/ftp as a user would write it: log in, store a file, retrieve it.
// Its TLS data connections are written by STOR and closed without a read.
// Usage: jlaffaye-ftp MODE(plain|explicit|implicit) TLS(1.2|1.3|-) PORT USER PASSWORD CAFILE LOCAL REMOTE BACK
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jlaffaye/ftp"
)

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 10 {
		fail("usage", fmt.Errorf("MODE TLS PORT USER PASSWORD CAFILE LOCAL REMOTE BACK"))
	}
	mode, version, port, user, password, cafile, local, remote, back :=
		os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6], os.Args[7], os.Args[8], os.Args[9]

	options := []ftp.DialOption{ftp.DialWithTimeout(60 * time.Second)}
	if mode != "plain" {
		pem, err := os.ReadFile(cafile)
		if err != nil {
			fail("ca file", err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		v := uint16(tls.VersionTLS13)
		if version == "1.2" {
			v = tls.VersionTLS12
		}
		config := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: v, MaxVersion: v}
		if mode == "explicit" {
			options = append(options, ftp.DialWithExplicitTLS(config))
		} else {
			options = append(options, ftp.DialWithTLS(config))
		}
	}
	c, err := ftp.Dial("127.0.0.1:"+port, options...)
	if err != nil {
		fail("dial", err)
	}
	if err := c.Login(user, password); err != nil {
		fail("login", err)
	}
	in, err := os.Open(local)
	if err != nil {
		fail("open", err)
	}
	if err := c.Stor(remote, in); err != nil {
		fail("stor", err)
	}
	in.Close()
	r, err := c.Retr(remote)
	if err != nil {
		fail("retr", err)
	}
	out, err := os.Create(back)
	if err != nil {
		fail("create", err)
	}
	if _, err := io.Copy(out, r); err != nil {
		fail("retr copy", err)
	}
	if err := r.Close(); err != nil {
		fail("retr close", err)
	}
	if err := out.Close(); err != nil {
		fail("write", err)
	}
	if err := c.Quit(); err != nil {
		fail("quit", err)
	}
}
