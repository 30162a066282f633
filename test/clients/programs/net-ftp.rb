# Ruby's net/ftp as a user would write it: log in, put a file, get it back. Over TLS (explicit
# only: net-ftp has no implicit FTPS) it writes an upload's data connection and closes it unread.
# Usage: ruby net-ftp.rb MODE(plain|explicit) TLS(1.2|1.3|-) PORT USER PASSWORD CAFILE LOCAL REMOTE BACK
require 'net/ftp'
require 'openssl'

mode, tls, port, user, password, cafile, local, remote, back = ARGV
options = { port: Integer(port), username: user, password: password, passive: true, open_timeout: 60, read_timeout: 60 }
if mode == 'explicit'
  version = tls == '1.2' ? OpenSSL::SSL::TLS1_2_VERSION : OpenSSL::SSL::TLS1_3_VERSION
  options[:ssl] = { ca_file: cafile, min_version: version, max_version: version }
end
Net::FTP.open('127.0.0.1', **options) do |ftp|
  ftp.binary = true
  ftp.putbinaryfile(local, remote)
  ftp.getbinaryfile(remote, back)
end
