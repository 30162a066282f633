#!/usr/bin/perl
# Perl's Net::FTP as a user would write it: log in, put a file, get it back. Over TLS (explicit:
# starttls, implicit: SSL => 1) Net::FTP never reads an upload's data connection.
# Usage: net-ftp.pl MODE(plain|explicit|implicit) TLS(1.2|1.3|-) PORT USER PASSWORD CAFILE LOCAL REMOTE BACK
use strict;
use warnings;
use Net::FTP;

my ($mode, $tls, $port, $user, $password, $cafile, $local, $remote, $back) = @ARGV;
my %ssl = $mode eq 'plain' ? () : (
  SSL_ca_file => $cafile,
  SSL_version => $tls eq '1.2' ? 'TLSv1_2' : 'TLSv1_3',
);
my $ftp = Net::FTP->new('127.0.0.1', Port => $port, Passive => 1, Timeout => 60,
  ($mode eq 'implicit' ? (SSL => 1) : ()), %ssl)
  or die "connect: $@\n";
if ($mode eq 'explicit') { $ftp->starttls() or die 'starttls: ' . $ftp->message . "\n"; }
$ftp->login($user, $password) or die 'login: ' . $ftp->message . "\n";
$ftp->binary() or die 'binary: ' . $ftp->message . "\n";
$ftp->put($local, $remote) or die 'put: ' . $ftp->code . ' ' . $ftp->message . "\n";
$ftp->get($remote, $back) or die 'get: ' . $ftp->code . ' ' . $ftp->message . "\n";
$ftp->quit();
